"""The drift command line: theory runs, configuration, clear errors."""

import xarray as xr
from typer.testing import CliRunner

from drift.cli import app

runner = CliRunner()

SMALL = ["--set", "data.n_train=8", "--set", "data.n_test=4", "--set", "record.n_times=12",
         "--set", "dynamics.duration=200", "--no-progress"]


def test_theory_writes_netcdf_and_figures(tmp_path):
    out = tmp_path / "theory.nc"
    result = runner.invoke(app, ["theory", "--out", str(out), "--figures",
                                 str(tmp_path / "figs"), *SMALL])
    assert result.exit_code == 0, result.output
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert ds["output_mean"].dims == ("time", "stimulus")
    assert ds.sizes["stimulus"] == 12
    assert "network:" in ds.attrs["config"]
    assert ds.attrs["error_estimate"] < 1e-3
    # both phases: fitted after the gradient phase, still moving in the diffusive phase
    loss = ds["train_loss"].values
    assert loss[-1] < 0.2 * loss[0]
    assert (tmp_path / "figs" / "output_mean.png").stat().st_size > 1000
    ds.close()
    again = runner.invoke(app, ["theory", "--out", str(out), *SMALL])
    assert again.exit_code == 2 and "exists" in again.output


def test_bad_config_exits_cleanly_without_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("dynamics:\n  temperature: -1\nnetwork:\n  depth: 0\n")
    result = runner.invoke(app, ["theory", str(cfg), "--out", str(tmp_path / "x.nc")])
    assert result.exit_code == 2
    assert "dynamics.temperature" in result.output and "network.depth" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["theory", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    badset = runner.invoke(app, ["config", "--set", "network.activation=gelu"])
    assert badset.exit_code == 2 and "network.activation" in badset.output


def test_help_lists_every_option():
    result = runner.invoke(app, ["theory", "--help"])
    assert result.exit_code == 0
    for option in ("--out", "--figures", "--overwrite", "--set", "temperature"):
        assert option in result.output
    assert runner.invoke(app, ["config"]).output.startswith("network:")


def test_simulate_writes_a_store_and_refuses_to_overwrite(tmp_path):
    store = tmp_path / "run.zarr"
    args = ["simulate", "--out", str(store), "--no-progress",
            "--set", "network.width=16", "--set", "ensemble.members=3",
            "--set", "data.n_train=4", "--set", "data.n_test=2",
            "--set", "dynamics.duration=2.0", "--set", "record.n_times=3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    from drift.io import open_run

    ds = open_run(store)
    assert ds["output"].dims == ("time", "member", "stimulus") and ds.sizes["member"] == 3
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "overwrite" in again.output


def test_sweep_spec_errors_are_clean(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("base: {}\nparameters:\n  dynamics.temprature: [0.1, 0.2]\n")
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "temprature" in result.output
