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
