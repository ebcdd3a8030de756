"""Simulation runs: format, prior statistics, theory agreement, streaming, resume, errors."""

from __future__ import annotations

import importlib
import math
import shutil
from statistics import NormalDist

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from drift.config import load_config
from drift.datasets import load_dataset
from drift.io import PartialRunWarning, open_run, validate_dataset
from drift.simulate import (
    DivergenceError,
    estimate_store_bytes,
    simulate,
    snapshot_steps,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: one thread avoids waiting on a busy second core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_config(**overrides) -> dict:
    cfg = {
        "network": {"depth": 2, "width": 32, "activation": "relu"},
        "dynamics": {"temperature": 0.05, "prior_variance": 1.0, "init_variance": 0.5,
                     "dt": 0.02, "duration": 3.0},
        "data": {"n_train": 8, "n_test": 4, "input_dim": 10},
        "record": {"n_times": 20, "units": 16},
        "ensemble": {"members": 4, "seed": 3},
        "device": "cpu",
        "dtype": "float64",
    }
    for key, value in overrides.items():
        section, name = key.split(".")
        cfg[section][name] = value
    return cfg


def z_threshold(n_comparisons: int, family_alpha: float = 1e-3) -> float:
    """At least 4 standard errors; Bonferroni-corrected when there are many comparisons."""
    return max(4.0, NormalDist().inv_cdf(1 - family_alpha / (2 * n_comparisons)))


def assert_within_se(sim, se, expected, what: str, extra_tolerance=0.0) -> None:
    """``|sim - expected| <= k SE + extra`` everywhere (k from :func:`z_threshold`), and
    root-mean-square z-score below 2 (catches a bias that every entry shares)."""
    sim, se, expected = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in
                                              (sim, se, expected)))
    ok = se > 0
    z = np.abs(sim - expected)[ok] / (se[ok] + np.broadcast_to(extra_tolerance, sim.shape)[ok])
    k = z_threshold(z.size)
    worst = int(np.argmax(z))
    assert z.max() <= k, (
        f"{what}: max |z| = {z.max():.2f} > {k:.2f} over {z.size} comparisons "
        f"(sim {sim[ok][worst]:.5g} vs expected {expected[ok][worst]:.5g}, "
        f"SE {se[ok][worst]:.3g})"
    )
    rms = float(np.sqrt(np.mean(z**2)))
    assert rms < 2.0, f"{what}: rms z = {rms:.2f} (systematic deviation)"


# ------------------------------------------------------------------ format, basics


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "small.zarr"
    ds = simulate(small_config(), out=out, progress=False)
    return out, ds


def test_result_follows_the_data_format(small_run):
    _, ds = small_run
    validate_dataset(ds, kind="simulation")
    cfg = load_config(small_config())
    assert ds.sizes == {"time": snapshot_steps(cfg).size, "member": 4, "layer": 2,
                        "unit": 16, "stimulus": 12}
    assert list(ds.split.values[:8]) == ["train"] * 8
    assert list(ds.split.values[8:]) == ["test"] * 4
    np.testing.assert_array_equal(ds.target.values[:8], load_dataset(cfg).y_train)
    assert ds.attrs["complete"] == 1 and ds.attrs["n_written"] == ds.sizes["time"]
    assert load_config(__import__("yaml").safe_load(ds.attrs["config"])) == cfg
    # streamed results are opened lazily
    assert ds.activity.chunks is not None


def test_memory_run_equals_streamed_run(small_run):
    _, streamed = small_run
    in_memory = simulate(small_config(), progress=False)
    xr.testing.assert_equal(in_memory.drop_attrs(), streamed.load().drop_attrs())


def test_snapshot_times_are_exact_step_times(small_run):
    _, ds = small_run
    steps = ds.step.values
    assert steps[0] == 0 and np.all(np.diff(steps) > 0)
    np.testing.assert_array_equal(ds.time.values, steps * 0.02)
    requested = np.asarray(load_config(small_config()).record_times())
    np.testing.assert_array_equal(np.unique(np.rint(requested / 0.02)), steps)


def test_recorded_quantities_are_consistent(small_run):
    """output = readout . activity / sqrt(N) when every unit is recorded; loss from output."""
    cfg = small_config(**{"record.units": None, "network.depth": 1, "record.n_times": 4})
    ds = simulate(cfg, progress=False)
    y = ds.target.values[:8]
    f = np.einsum("tmu,tmus->tms", ds.readout.values, ds.activity.sel(layer=1).values)
    np.testing.assert_allclose(ds.output.values, f / math.sqrt(32), rtol=1e-12)
    loss = 0.5 * ((ds.output.values[:, :, :8] - y) ** 2).sum(-1)
    np.testing.assert_allclose(ds.loss.values, loss, rtol=1e-12)
    assert np.all(ds.activity.values >= 0)  # relu
    assert ds.loss.mean("member")[-1] < ds.loss.mean("member")[0]  # it learns


def test_records_selected_layers_and_units():
    ds = simulate(small_config(**{"network.depth": 3, "record.layers": [3, 1],
                                  "record.units": 5, "record.n_times": 3}), progress=False)
    assert ds.layer.values.tolist() == [1, 3] and ds.sizes["unit"] == 5


def test_explicit_arrays_override_config_dataset():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 7)), np.sign(rng.standard_normal(5))
    ds = simulate(small_config(**{"record.n_times": 3}), x_train=x, y_train=y, progress=False)
    assert ds.sizes["stimulus"] == 5 and set(ds.split.values) == {"train"}
    np.testing.assert_array_equal(ds.target.values, y)
    with pytest.raises(ValueError, match="y_train"):
        simulate(small_config(), x_train=x, progress=False)
    with pytest.raises(ValueError, match="rows"):
        simulate(small_config(), x_train=x, y_train=y[:3], progress=False)


def test_progress_bar_and_size_report(capsys):
    simulate(small_config(**{"record.n_times": 3, "dynamics.duration": 6.0}), progress=True)
    err = capsys.readouterr().err
    assert "estimated recording" in err and "step" in err and "loss=" in err


# ------------------------------------------------------------- prior (no data) dynamics


def prior_correlation(t1, t2, sigma2, sigma02, lam):
    """m(t, t') of THEORY.md section 3."""
    return sigma2 * np.exp(-lam * np.abs(t1 - t2)) + (sigma02 - sigma2) * np.exp(-lam * (t1 + t2))


def relu_kernel(q1, q2, c):
    """E[relu(u) relu(v)] for (u, v) ~ N(0, [[q1, c], [c, q2]]) (THEORY.md section 4)."""
    rho = np.clip(c / np.sqrt(q1 * q2), -1.0, 1.0)
    theta = np.arccos(rho)
    return np.sqrt(q1 * q2) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)


@pytest.fixture(scope="module")
def prior_run():
    """No training data: every weight is an independent OU process."""
    cfg = {
        "network": {"depth": 1, "width": 64, "activation": "relu"},
        "dynamics": {"temperature": 0.5, "prior_variance": 1.0, "init_variance": 0.3,
                     "dt": 0.05, "duration": 4.0},
        "record": {"n_times": 10, "units": None, "first_time": 0.1},
        "ensemble": {"members": 64, "seed": 7},
        "device": "cpu",
        "dtype": "float64",
    }
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 10))
    ds = simulate(cfg, x_train=np.zeros((0, 10)), y_train=np.zeros(0), x_test=x,
                  y_test=np.zeros(6), progress=False)
    return ds, x


def test_prior_weight_correlation_follows_ou(prior_run):
    """(1/(M N)) sum a_i(t) a_i(t') -> m(t, t') within Monte-Carlo error."""
    ds, _ = prior_run
    a = ds.readout.values.reshape(ds.sizes["time"], -1)  # (time, members x units)
    n = a.shape[1]
    t = ds.time.values
    i, j = np.triu_indices(t.size)
    prods = a[i] * a[j]
    mean, se = prods.mean(1), prods.std(1, ddof=1) / np.sqrt(n)
    expected = prior_correlation(t[i], t[j], 1.0, 0.3, 0.5)
    assert_within_se(mean, se, expected, "two-time readout correlation m(t, t')")
    # the equal-time variance moves from sigma02 to sigma2: the test can tell them apart
    assert abs(mean[0] - 0.3) < 0.05 and abs(mean[i == j][-1] - expected[i == j][-1]) < 0.1


def test_prior_hidden_two_time_kernel_matches_closed_form(prior_run):
    """Layer 1 without data: Sig_1((x,t),(x',t')) = E[relu(u) relu(v)], Q1 = m(t,t') x.x'/N0."""
    ds, x = prior_run
    act = ds.activity.sel(layer=1).values  # (time, member, unit, stimulus)
    t = ds.time.values
    gram = x @ x.T / x.shape[1]
    sims, ses, exps = [], [], []
    for r in (0, t.size // 2, t.size - 1):
        for k in range(t.size):
            per_member = np.einsum("mus,muv->msv", act[k], act[r]) / act.shape[2]
            sims.append(per_member.mean(0))
            ses.append(per_member.std(0, ddof=1) / np.sqrt(per_member.shape[0]))
            m12 = prior_correlation(t[k], t[r], 1.0, 0.3, 0.5)
            q1 = prior_correlation(t[k], t[k], 1.0, 0.3, 0.5) * np.diag(gram)[:, None]
            q2 = prior_correlation(t[r], t[r], 1.0, 0.3, 0.5) * np.diag(gram)[None, :]
            exps.append(relu_kernel(q1, q2, m12 * gram))
    assert_within_se(np.array(sims), np.array(ses), np.array(exps), "layer-1 two-time kernel")


# ------------------------------------------------------------------ theory agreement


def _theory(*names):
    theory = pytest.importorskip("drift.theory")
    missing = [n for n in names if not hasattr(theory, n)]
    if missing:
        pytest.skip(f"drift.theory does not provide {missing} yet")
    return theory


def theory_config(*, depth, width, members, duration, n_times, units, seed, dt=0.02):
    return {
        "network": {"depth": depth, "width": width, "activation": "relu"},
        "dynamics": {"temperature": 0.05, "prior_variance": 1.0, "init_variance": 0.5,
                     "dt": dt, "duration": duration},
        "data": {"name": "synthetic", "n_train": 8, "n_test": 4, "input_dim": 10, "seed": 2},
        "record": {"n_times": n_times, "units": units, "first_time": 0.1},
        "ensemble": {"members": members, "seed": seed},
        "device": "cpu",
        "dtype": "float32",
    }


def theory_params(cfg):
    d = cfg["dynamics"]
    return {"depth": cfg["network"]["depth"], "activation": cfg["network"]["activation"],
            "temperature": d["temperature"], "prior_variance": d["prior_variance"],
            "init_variance": d["init_variance"]}


def check_mean_output(theory, ds, data, params, times_mask=None):
    times = ds.time.values if times_mask is None else ds.time.values[times_mask]
    sim = ds.output.sel(time=times)
    th = theory.mean_predictor(data.x_train, data.y_train, data.x_test, times, **params)
    m = sim.shape[1]
    assert_within_se(sim.mean("member").values, sim.std("member", ddof=1).values / np.sqrt(m),
                     th["output_mean"].values, "ensemble-mean output vs mean_predictor",
                     extra_tolerance=th["output_mean_error"].values)


def check_hidden_kernel(theory, ds, data, params, layers):
    x = np.concatenate([data.x_train, data.x_test])
    t = ds.time.values
    sims, ses, exps = [], [], []
    for layer in layers:
        act = ds.activity.sel(layer=layer).values
        for r in (0, t.size // 2, t.size - 1):
            for k in range(0, t.size, 2):
                per_member = np.einsum("mus,muv->msv", act[k], act[r]) / act.shape[2]
                sims.append(per_member.mean(0))
                ses.append(per_member.std(0, ddof=1) / np.sqrt(per_member.shape[0]))
                exps.append(np.asarray(theory.hidden_kernel(x, float(t[k]), x, float(t[r]),
                                                            layer=layer, **params)))
    assert_within_se(np.array(sims), np.array(ses), np.array(exps),
                     "hidden two-time population kernel vs hidden_kernel")


def check_frozen(theory, ds, data, params):
    t0 = ds.attrs["freeze_readout_at"]
    after = ds.time.values >= t0
    sim = ds.output.isel(time=after)
    th = theory.frozen_readout(data.x_train, data.y_train, data.x_test, t0,
                               ds.time.values[after], **params)
    m = sim.shape[1]
    err = th["output_frozen_error"].values if "output_frozen_error" in th else 0.0
    assert_within_se(sim.mean("member").values, sim.std("member", ddof=1).values / np.sqrt(m),
                     th["output_frozen"].values, "frozen-readout output vs frozen_readout",
                     extra_tolerance=err)


@pytest.fixture(scope="module")
def reduced_theory_run():
    """Reduced ensemble (64 members, width 256, depth 1), readout frozen at t0 = 10."""
    cfg = theory_config(depth=1, width=256, members=64, duration=24.0, n_times=16, units=256,
                        seed=1)
    ds = simulate(cfg, progress=False, freeze_readout_at=10.0)
    return cfg, ds, load_dataset(load_config(cfg))


def test_theory_mean_output_reduced(reduced_theory_run):
    theory = _theory("mean_predictor")
    cfg, ds, data = reduced_theory_run
    before = ds.time.values <= ds.attrs["freeze_readout_at"]
    check_mean_output(theory, ds, data, theory_params(cfg), before)


def test_theory_hidden_kernel_reduced(reduced_theory_run):
    theory = _theory("hidden_kernel")
    cfg, ds, data = reduced_theory_run
    check_hidden_kernel(theory, ds, data, theory_params(cfg), layers=[1])


def test_theory_frozen_readout_reduced(reduced_theory_run):
    theory = _theory("frozen_readout")
    cfg, ds, data = reduced_theory_run
    check_frozen(theory, ds, data, theory_params(cfg))


@pytest.mark.slow
def test_theory_agreement_full():
    """THEORY.md section 7 check 6: width 512, 100 members, depth 2, both phases
    (1 / lambda = 20; a few minutes on one CPU core)."""
    theory = _theory("mean_predictor", "hidden_kernel", "frozen_readout")
    cfg = theory_config(depth=2, width=512, members=100, duration=40.0, n_times=16, units=128,
                        seed=5, dt=0.05)
    data = load_dataset(load_config(cfg))
    params = theory_params(cfg)
    ds = simulate(cfg, progress=False)
    check_mean_output(theory, ds, data, params)
    check_hidden_kernel(theory, ds, data, params, layers=[1, 2])
    frozen_cfg = {**cfg, "ensemble": {"members": 100, "seed": 6},
                  "dynamics": {**cfg["dynamics"], "duration": 25.0}}
    frozen = simulate(frozen_cfg, progress=False, freeze_readout_at=8.0)
    check_frozen(theory, frozen, data, params)


def test_frozen_readout_keeps_readout_fixed(reduced_theory_run):
    _, ds, _ = reduced_theory_run
    t0 = ds.attrs["freeze_readout_at"]
    assert t0 == pytest.approx(10.0)
    after = ds.readout.sel(time=slice(t0, None)).values
    assert np.all(after == after[0])
    before = ds.readout.sel(time=slice(None, t0)).values
    assert not np.all(before == before[-1])
    # the hidden representation keeps drifting after t0
    act = ds.activity.sel(time=slice(t0, None)).values
    assert not np.all(act == act[0])


# ------------------------------------------------------------ streaming and resume


class Stop(Exception):
    """Raised by a test hook to interrupt a run."""


def _stop_at(index):
    def hook(k, step, time):
        if k == index:
            raise KeyboardInterrupt

    return hook


def _assert_same_run(a: xr.Dataset, b: xr.Dataset) -> None:
    for name in ("activity", "output", "readout", "loss", "time", "step"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


@pytest.mark.parametrize("interval", [0.0, math.inf], ids=["checkpoint-often", "rewind-to-start"])
def test_resume_equals_uninterrupted_run(tmp_path, small_run, interval):
    _, full = small_run
    out = tmp_path / "run.zarr"
    with pytest.raises(KeyboardInterrupt):
        simulate(small_config(), out=out, progress=False, checkpoint_interval=interval,
                 on_snapshot=_stop_at(9))
    with pytest.warns(PartialRunWarning, match="10 of"):
        partial = open_run(out)
    assert partial.sizes["time"] == 10
    resumed = simulate(small_config(), out=out, resume=True, progress=False)
    assert resumed.attrs["complete"] == 1
    _assert_same_run(resumed, full)


def test_resume_from_a_checkpoint_between_snapshots(tmp_path, monkeypatch):
    """Killed mid-interval, after a periodic checkpoint: resume re-simulates from there."""
    cfg = small_config(**{"dynamics.duration": 12.0, "record.n_times": 4})
    full = simulate(cfg, progress=False)
    sim_module = importlib.import_module("drift.simulate")  # the module (drift.simulate is
    # also the function re-exported by the package)

    original = sim_module.LangevinIntegrator.step
    calls = {"n": 0}

    def step(self, **kw):
        calls["n"] += 1
        if calls["n"] == 540:  # past the check at step 512, before the next snapshot
            raise KeyboardInterrupt
        return original(self, **kw)

    monkeypatch.setattr(sim_module.LangevinIntegrator, "step", step)
    out = tmp_path / "run.zarr"
    with pytest.raises(KeyboardInterrupt):
        simulate(cfg, out=out, progress=False, checkpoint_interval=0.0)
    monkeypatch.setattr(sim_module.LangevinIntegrator, "step", original)
    from drift.io.runstore import load_checkpoint

    assert load_checkpoint(out)["step"] == 512
    resumed = simulate(None, out=out, resume=True, progress=False)  # config from the store
    _assert_same_run(resumed, full)


def test_resume_refuses_a_different_config(tmp_path):
    out = tmp_path / "run.zarr"
    with pytest.raises(KeyboardInterrupt):
        simulate(small_config(), out=out, progress=False, on_snapshot=_stop_at(3))
    with pytest.raises(ValueError, match=r"dynamics\.temperature"):
        simulate(small_config(**{"dynamics.temperature": 0.1}), out=out, resume=True,
                 progress=False)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        simulate(small_config(), out=tmp_path / "absent.zarr", resume=True, progress=False)


def test_overwrite_is_refused_without_flag(tmp_path, small_run):
    out = tmp_path / "run.zarr"
    shutil.copytree(small_run[0], out)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        simulate(small_config(), out=out, progress=False)
    ds = simulate(small_config(**{"record.n_times": 3}), out=out, overwrite=True, progress=False)
    assert ds.sizes["time"] == snapshot_steps(small_config(**{"record.n_times": 3})).size
    not_a_store = tmp_path / "precious"
    not_a_store.mkdir()
    (not_a_store / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a zarr store"):
        simulate(small_config(), out=not_a_store, overwrite=True, progress=False)
    assert (not_a_store / "notes.txt").exists()


@pytest.fixture
def store_copy(tmp_path, small_run):
    out = tmp_path / "copy.zarr"
    shutil.copytree(small_run[0], out)
    return out


def test_open_run_accepts_an_intact_store(store_copy, small_run):
    _assert_same_run(open_run(store_copy), small_run[1])


def test_truncated_store_missing_chunk_is_detected(store_copy):
    arr = zarr.open_group(str(store_copy), mode="r")["output"]
    (store_copy / "output" / arr.metadata.encode_chunk_key((3, 0, 0))).unlink()
    with pytest.raises(ValueError, match=r"corrupt.*`output`.*\[3\]"):
        open_run(store_copy)


def test_damaged_chunk_is_detected(store_copy):
    arr = zarr.open_group(str(store_copy), mode="r")["loss"]
    (store_copy / "loss" / arr.metadata.encode_chunk_key((2, 0))).write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"corrupt.*`loss`"):
        open_run(store_copy)


def test_time_and_data_length_mismatch_is_detected(store_copy):
    group = zarr.open_group(str(store_copy), mode="r+")
    n = group["loss"].shape[0]
    group["loss"].resize((n - 2, group["loss"].shape[1]))
    with pytest.raises(ValueError, match="inconsistent.*time coordinate"):
        open_run(store_copy)


@pytest.mark.parametrize("value", [None, 10_000, -1])
def test_bad_n_written_is_detected(store_copy, value):
    group = zarr.open_group(str(store_copy), mode="r+")
    if value is None:
        del group.attrs["n_written"]
    else:
        group.attrs["n_written"] = value
    with pytest.raises(ValueError, match="n_written"):
        open_run(store_copy)


def test_missing_complete_flag_warns_but_returns_data(store_copy, small_run):
    group = zarr.open_group(str(store_copy), mode="r+")
    del group.attrs["complete"]
    with pytest.warns(PartialRunWarning, match="partial"):
        ds = open_run(store_copy)
    assert ds.sizes["time"] == small_run[1].sizes["time"]


# ------------------------------------------------------------- divergence and budget


def test_divergence_names_dt_and_the_stable_bound(tmp_path):
    cfg = small_config(**{"dynamics.temperature": 0.0, "dynamics.dt": 10.0,
                          "dynamics.duration": 3000.0, "record.n_times": 40})
    out = tmp_path / "run.zarr"
    with pytest.warns(RuntimeWarning, match="stable bound"):
        with pytest.raises(DivergenceError, match=r"dynamics\.dt = 10\.0.*stable bound") as info:
            simulate(cfg, out=out, progress=False)
    bound = zarr.open_group(str(out), mode="r").attrs["dt_stable_bound"]
    assert f"dt < {bound:.4g}" in str(info.value)
    with pytest.warns(PartialRunWarning, match="diverged"):
        kept = open_run(out)
    assert 1 <= kept.sizes["time"] < snapshot_steps(cfg).size
    assert np.all(np.isfinite(kept.loss.values))
    # in memory the snapshots so far come with the error
    with pytest.warns(RuntimeWarning):
        with pytest.raises(DivergenceError) as info:
            simulate(cfg, progress=False)
    validate_dataset(info.value.partial, kind="simulation")


def test_store_size_limit_is_enforced(tmp_path):
    cfg = small_config(**{"record.max_store_gb": 1e-6})
    with pytest.raises(ValueError, match=r"record\.max_store_gb") as info:
        simulate(cfg, out=tmp_path / "big.zarr", progress=False)
    for key in ("record.units", "record.layers", "record.n_times"):
        assert key in str(info.value)
    assert not (tmp_path / "big.zarr").exists()


def test_store_size_estimate_matches_the_recording(small_run):
    _, ds = small_run
    data_bytes = sum(ds[name].nbytes for name in ("activity", "output", "readout", "loss"))
    estimate = estimate_store_bytes(load_config(small_config()), ds.sizes["stimulus"])
    assert data_bytes <= estimate <= data_bytes * 1.05 + 4096
