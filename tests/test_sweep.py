"""Sweeps: spec validation, runs on a real LocalCluster, failures, killed workers, laziness."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr
import yaml

import analyses
from drift.io import open_run
from drift.simulate import simulate
from drift.sweep import (
    SweepSpecError,
    load_sweep_spec,
    open_sweep,
    read_manifest,
    sweep,
    sweep_command,
    sweep_dims,
    sweep_drift_summary,
)
from drift.sweep.cluster import plan_local
from drift.sweep.task import run_task

BASE = {
    "network": {"depth": 2, "width": 16, "activation": "relu"},
    "dynamics": {"temperature": 0.05, "prior_variance": 1.0, "init_variance": 0.5,
                 "dt": 0.05, "duration": 2.0},
    "data": {"n_train": 6, "n_test": 2, "input_dim": 8},
    "record": {"n_times": 5, "units": 8},
    "ensemble": {"members": 4, "seed": 0},
    "device": "cpu",
    "dtype": "float64",
}
GRID = {
    "base": BASE,
    "parameters": {
        "dynamics.temperature": [0.01, 0.05],
        "network.width": [16, 24],
        "ensemble.seed": [0, 1],
    },
}
SWEEP_COORDS = ["temperature", "width", "seed", "store", "complete"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny runs: one torch thread, as every worker of a 2-worker cluster on 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes, shared by several tests."""
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"})
    with c:
        yield c


def reference(values: dict) -> xr.Dataset:
    """The run of ``BASE`` with ``values`` set, simulated in this process, in memory."""
    spec = load_sweep_spec({"base": BASE, "parameters": {k: [v] for k, v in values.items()}})
    return simulate(spec.tasks[0].config, progress=False)


def run_data(ds: xr.Dataset) -> xr.Dataset:
    """One run of a combined sweep, as a plain run dataset."""
    drop = [c for c in ds.coords if c in SWEEP_COORDS or c == "run"]
    return ds.drop_vars(drop).load().drop_attrs()


@dataclass
class KillOnce:
    """Snapshot hook: kill the worker process running ``task`` after ``after`` snapshots,
    the first time only (``marker`` records that it happened)."""

    task: str
    after: int
    marker: str

    def __call__(self, name: str, index: int, step: int, time: float) -> None:
        if name == self.task and index + 1 >= self.after and not os.path.exists(self.marker):
            Path(self.marker).write_text(f"{name} killed after snapshot {index}")
            os.kill(os.getpid(), signal.SIGKILL)


# ----------------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"base": BASE, "parameters": {"dynamics.temprature": [0.1]}},
         ["dynamics.temprature", "did you mean 'dynamics.temperature'"]),
        ({"base": BASE, "parameters": {"network.width": 16}}, ["network.width", "list"]),
        ({"base": BASE, "parameters": {"network.width": []}}, ["network.width", "empty"]),
        ({"base": BASE, "parameters": {"network.width": [16, 16.0]}},
         ["network.width", "same run setting"]),
        ({"base": BASE, "parameters": {"dynamics.temperature": [0.1, -1.0]}},
         ["1 of 2 combinations", "dynamics.temperature=-1.0", "greater than or equal to 0"]),
        ({"base": BASE, "mode": "zip",
          "parameters": {"network.width": [16, 24], "ensemble.seed": [0]}},
         ["zip", "network.width: 2", "ensemble.seed: 1"]),
        ({"base": BASE, "mode": "product", "parameters": {"network.width": [16]}}, ["mode"]),
        ({"base": BASE, "parameter": {"network.width": [16]}}, ["parameter", "parameters"]),
        ({"base": BASE, "parameters": {"data": [{"n_train": 4}], "data.seed": [1]}},
         ["data.seed", "inside 'data'"]),
        ({"base": BASE, "parameters": {"network.width": [16]}, "dims": {"network.width": "time"}},
         ["dims.network.width", "time"]),
        ({"base": "no-such-run.yaml", "parameters": {"network.width": [16]}},
         ["base", "no-such-run.yaml"]),
    ],
)
def test_invalid_specs_name_the_key(spec, words):
    with pytest.raises(ValueError) as info:
        load_sweep_spec(spec)
    assert isinstance(info.value, SweepSpecError)
    for word in words:
        assert word in str(info.value)


def test_spec_tasks_names_and_dims(tmp_path):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(BASE))
    spec_file = tmp_path / "sweep.yaml"
    spec_file.write_text(yaml.safe_dump({
        "base": "run.yaml",  # relative to the spec file
        "parameters": {"dynamics.temperature": [0.01, 0.05], "network.width": [16, 24.0],
                       "ensemble.seed": [0, 1, 2], "data.seed": [3, 4]},
        "dims": {"dynamics.temperature": "T"},
    }, sort_keys=False))
    sp = load_sweep_spec(spec_file)
    assert sp.mode == "grid" and sp.shape == (2, 2, 3, 2) and len(sp.tasks) == 24
    assert [p.dim for p in sp.parameters] == ["T", "width", "ensemble_seed", "data_seed"]
    assert sp.parameters[1].values == (16, 24)  # as the validated config holds them
    first, last = sp.tasks[0], sp.tasks[-1]
    assert first.position == (0, 0, 0, 0) and last.position == (1, 1, 2, 1)
    assert first.name.startswith("T=0.01_width=16_ensemble_seed=0_data_seed=3-")
    assert first.name.endswith(".zarr")
    assert len({t.name for t in sp.tasks}) == 24
    assert last.config["network"]["width"] == 24 and last.config["data"]["seed"] == 4
    assert load_sweep_spec(spec_file).tasks == sp.tasks  # deterministic
    again = load_sweep_spec(sp.to_dict())
    assert [t.name for t in again.tasks] == [t.name for t in sp.tasks]

    zipped = load_sweep_spec({"base": BASE, "mode": "zip", "parameters": {
        "dynamics.temperature": [0.01, 0.02, 0.03], "network.width": [16, 24, 32]}})
    assert zipped.shape == (3,)
    assert [t.values for t in zipped.tasks][1] == {"dynamics.temperature": 0.02,
                                                    "network.width": 24}


def test_embedded_cluster_options(monkeypatch):
    import distributed

    import drift.sweep.cluster as cluster_mod

    made = {}

    class FakeCluster:
        def __init__(self, **kwargs):
            made.update(kwargs, saturation=dask.config.get(
                "distributed.scheduler.worker-saturation"))

    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "SpecCluster", FakeCluster)
    plan = cluster_mod.LocalPlan(3, 1, ())
    cluster_mod._local_cluster(plan, {"memory_limit": "2GB",
                                      "scheduler_kwargs": {"allowed_failures": 0}})
    assert made["n_workers"] == 3 and made["threads_per_worker"] == 1 and made["processes"]
    assert made["memory_limit"] == "2GB" and made["dashboard_address"] is None
    assert made["scheduler_kwargs"] == {"dashboard_address": ":0", "allowed_failures": 0}
    assert made["saturation"] == 1.0

    made.clear()
    cluster_mod._local_cluster(cluster_mod.LocalPlan(2, 4, ("0", "3")), {})
    workers = made["workers"]
    assert [w["options"]["env"]["CUDA_VISIBLE_DEVICES"] for w in workers.values()] == ["0", "3"]
    assert all(w["options"]["nthreads"] == 1 for w in workers.values())
    assert made["scheduler"]["options"]["dashboard"] is False


def test_local_cluster_layout(monkeypatch):
    import drift.sweep.cluster as cluster_mod

    monkeypatch.setattr(cluster_mod, "cpu_count", lambda: 8)
    monkeypatch.setattr(cluster_mod, "visible_gpus", lambda: [])
    assert plan_local(3) == cluster_mod.LocalPlan(3, 2, ())
    assert plan_local(100) == cluster_mod.LocalPlan(8, 1, ())
    assert plan_local(100, n_workers=2, threads_per_run=3).torch_threads == 3
    monkeypatch.setattr(cluster_mod, "visible_gpus", lambda: ["2", "5"])
    assert plan_local(100, use_gpu=True) == cluster_mod.LocalPlan(2, 4, ("2", "5"))
    assert plan_local(100, use_gpu=False).gpus == ()
    assert plan_local(100, n_workers=3, use_gpu=True).gpus == ("2", "5", "2")


# ------------------------------------------------------------------- a 2 x 2 x 2 grid


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """The 2 x 2 x 2 grid run by the default embedded cluster with 2 worker processes."""
    out = tmp_path_factory.mktemp("grid") / "sweep"
    summary = sweep(GRID, out, n_workers=2, progress=False)
    return out, summary


def test_grid_sweep_equals_runs_one_by_one(grid_sweep):
    out, summary = grid_sweep
    assert summary.ok and summary.n_complete == 8 and summary.n_failed == 0, str(summary)
    assert "2 worker process(es)" in summary.where
    manifest = read_manifest(out)
    assert manifest["counts"]["complete"] == 8
    assert all(t["status"] == "complete" and t["action"] == "ran" for t in manifest["tasks"])

    ds = open_sweep(out)
    assert list(ds.activity.dims) == ["temperature", "width", "seed", "time", "member",
                                      "layer", "unit", "stimulus"]
    assert ds.temperature.values.tolist() == [0.01, 0.05]
    assert ds.width.values.tolist() == [16, 24]
    assert ds.seed.values.tolist() == [0, 1]
    assert ds.complete.values.all() and ds.attrs["sweep_mode"] == "grid"
    assert sweep_dims(ds) == ["temperature", "width", "seed"]
    for name in ("activity", "output", "readout", "loss"):
        assert isinstance(ds[name].data, da.Array), name  # lazy
    for t in manifest["tasks"]:
        v = t["values"]
        point = ds.sel(temperature=v["dynamics.temperature"], width=v["network.width"],
                       seed=v["ensemble.seed"])
        assert point.store.item() == t["name"]
        xr.testing.assert_equal(run_data(point), reference(v).drop_attrs())


def test_rerun_skips_complete_runs(grid_sweep, capsys):
    out, _ = grid_sweep
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.zarr/zarr.json")}
    summary = sweep(GRID, out, progress=False)
    assert summary.ok and summary.where == ""  # no cluster was started
    assert {t["action"] for t in summary.tasks} == {"skipped"}
    assert before == {p.name: p.stat().st_mtime_ns for p in out.glob("*.zarr/zarr.json")}
    assert sweep_command(_spec_file(out), out, workers=2, progress=False).ok
    assert "all runs complete" in capsys.readouterr().out


def _spec_file(out: Path) -> Path:
    path = out.parent / "grid.yaml"
    path.write_text(yaml.safe_dump(GRID, sort_keys=False))
    return path


def test_analyses_run_lazily_on_the_combined_sweep(grid_sweep):
    out, _ = grid_sweep
    ds = open_sweep(out)
    pv = analyses.pv_correlation(ds.sel(layer=2))
    assert isinstance(pv.correlation.data, da.Array)  # nothing computed yet
    assert pv.correlation.dims[:3] == ("temperature", "width", "seed")
    with dask.config.set(scheduler="synchronous"):
        got = pv.correlation.sel(temperature=0.05, width=24, seed=1).compute()
    one = analyses.pv_correlation(
        reference({"dynamics.temperature": 0.05, "network.width": 24, "ensemble.seed": 1})
        .sel(layer=2)
    )
    np.testing.assert_allclose(got.values, one.correlation.values, rtol=1e-12)

    fit = sweep_drift_summary(ds, layer=2, pool=("member", "seed"))
    assert fit.tau_d.dims == ("temperature", "width")
    assert np.isfinite(fit.tau_d.values).all() and (fit.tau_d.values > 0).all()
    runs = [reference({"dynamics.temperature": 0.01, "network.width": 16, "ensemble.seed": s})
            for s in (0, 1)]
    pair = xr.concat([r.activity.sel(layer=2) for r in runs], dim="seed")
    direct = analyses.fit_drift(pair, pool=("member", "seed"), n_boot=0)
    np.testing.assert_allclose(fit.tau_d.sel(temperature=0.01, width=16), direct.tau_d,
                               rtol=1e-9)


# ---------------------------------------------------------------------------- faults


def test_a_failed_task_is_reported_and_the_others_complete(tmp_path, cluster):
    missing = str(tmp_path / "missing.npz")
    spec = {"base": BASE, "mode": "zip", "parameters": {
        "dynamics.temperature": [0.01, 0.02, 0.03],
        "data.name": ["synthetic", "npz", "synthetic"],
        "data.path": [None, missing, None],
    }}
    out = tmp_path / "sweep"
    summary = sweep(spec, out, scheduler=cluster.scheduler_address, progress=False)
    assert summary.n_complete == 2 and summary.n_failed == 1 and not summary.ok
    (bad,) = summary.failed
    assert bad["values"]["data.path"] == missing
    assert bad["config"]["data"]["path"] == missing and bad["config"]["data"]["name"] == "npz"
    assert "does not exist" in bad["error"] and "Traceback" in bad["traceback"]
    assert "FAILED" in str(summary) and bad["name"] in str(summary)
    entry = json.loads((out / "sweep.json").read_text())["tasks"][1]
    assert entry["status"] == "failed" and entry["traceback"] == bad["traceback"]
    assert entry["config"] == bad["config"]

    with pytest.raises(ValueError, match="1 of 3 runs are not complete"):
        open_sweep(out)
    ds = open_sweep(out, allow_incomplete=True)
    assert ds.complete.values.tolist() == [True, False, True]
    assert ds.temperature.dims == ("run",) and ds.path.values[1] == json.dumps(missing)
    assert sweep_dims(ds) == ["run"] and ds.run.values.tolist() == [0, 1, 2]
    assert np.isnan(ds.loss.isel(run=1).values).all()
    assert np.isfinite(ds.loss.isel(run=[0, 2]).values).all()

    again = sweep(spec, out, scheduler=cluster.scheduler_address, progress=False)
    assert [t.get("action") for t in again.tasks] == ["skipped", "ran", "skipped"]
    assert again.tasks[1]["status"] == "failed" and again.tasks[1]["attempts"] == 2


def test_a_changed_base_is_not_mixed_with_old_runs(tmp_path, cluster):
    spec = {"base": BASE, "parameters": {"ensemble.seed": [0]}}
    out = tmp_path / "sweep"
    assert sweep(spec, out, scheduler=cluster, progress=False).ok
    changed = {"base": {**BASE, "ensemble": {"members": 2, "seed": 0}},
               "parameters": {"ensemble.seed": [0]}}
    summary = sweep(changed, out, scheduler=cluster, progress=False)
    assert summary.n_failed == 1 and "ensemble.members" in summary.failed[0]["error"]
    with pytest.raises(ValueError, match="another configuration"):
        open_sweep(out)
    assert sweep(changed, out, scheduler=cluster, progress=False, overwrite=True).ok
    assert open_sweep(out).sizes["member"] == 2


def test_a_killed_worker_is_resumed_by_the_sweep(tmp_path, cluster):
    """Dask retries the task of a dead worker; the retry resumes the partial store."""
    spec = {"base": BASE, "mode": "zip", "parameters": {"ensemble.seed": [0, 1]}}
    target = load_sweep_spec(spec).tasks[1].name
    marker = tmp_path / "killed"
    out = tmp_path / "sweep"
    summary = sweep(spec, out, scheduler=cluster, progress=False, checkpoint_interval=0,
                    on_snapshot=KillOnce(target, 3, str(marker)))
    assert marker.exists()
    assert summary.ok, str(summary)
    assert summary.tasks[1]["action"] == "resumed"
    ds = open_sweep(out)
    for i, s in enumerate((0, 1)):
        xr.testing.assert_equal(run_data(ds.isel(run=i)),
                                reference({"ensemble.seed": s}).drop_attrs())


def test_a_killed_worker_loses_nothing_and_a_rerun_completes(tmp_path, cluster):
    """With no retries the dead worker's task is reported failed; its store keeps every
    committed snapshot, and re-running the sweep resumes it to the uninterrupted result."""
    spec = {"base": BASE, "parameters": {"dynamics.temperature": [0.01, 0.05]}}
    target = load_sweep_spec(spec).tasks[0].name
    marker = tmp_path / "killed"
    out = tmp_path / "sweep"
    retries = cluster.scheduler.allowed_failures
    cluster.scheduler.allowed_failures = 0  # a dead worker fails its task at once
    try:
        first = sweep(spec, out, scheduler=cluster, progress=False, checkpoint_interval=0,
                      on_snapshot=KillOnce(target, 3, str(marker)))
    finally:
        cluster.scheduler.allowed_failures = retries
    assert marker.exists()
    assert first.n_failed == 1 and first.n_complete == 1
    assert "worker running this task died" in first.failed[0]["error"]
    assert first.failed[0]["n_written"] >= 3
    expected = reference({"dynamics.temperature": 0.01}).drop_attrs()
    with pytest.warns(UserWarning, match="partial"):
        partial = open_run(out / target)
    n = partial.sizes["time"]
    assert n >= 3
    xr.testing.assert_equal(partial.load().drop_attrs(), expected.isel(time=slice(0, n)))

    second = sweep(spec, out, scheduler=cluster.scheduler_address, progress=False)
    assert second.ok and [t["action"] for t in second.tasks] == ["resumed", "skipped"]
    ds = open_sweep(out)
    xr.testing.assert_equal(run_data(ds.sel(temperature=0.01)), expected)


def test_run_task_reports_instead_of_raising(tmp_path):
    store = tmp_path / "x.zarr"
    store.mkdir()
    (store / "data.txt").write_text("not a run")
    spec = load_sweep_spec({"base": BASE, "parameters": {"ensemble.seed": [0]}})
    record = run_task({"name": "x", "store": str(store), "config": spec.tasks[0].config})
    assert record["status"] == "failed" and "not a zarr store" in record["error"]
    assert (store / "data.txt").exists()
