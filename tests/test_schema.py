"""The data-format validator: valid datasets pass, each kind of violation is named."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from drift.io.schema import validate_dataset

T, M, L, U, S = 4, 3, 2, 5, 6


def simulation_dataset() -> xr.Dataset:
    rng = np.random.default_rng(0)
    attrs = {"units": "1", "long_name": "x"}
    ds = xr.Dataset(
        {
            "activity": (("time", "member", "layer", "unit", "stimulus"),
                         rng.random((T, M, L, U, S)), attrs),
            "output": (("time", "member", "stimulus"), rng.standard_normal((T, M, S)), attrs),
            "readout": (("time", "member", "unit"), rng.standard_normal((T, M, U)), attrs),
            "loss": (("time", "member"), rng.random((T, M)), attrs),
        },
        coords={
            "time": ("time", [0.0, 0.1, 1.0, 10.0], {"units": "time units of the dynamics"}),
            "stimulus": np.arange(S),
            "split": ("stimulus", np.array(["train"] * 4 + ["test"] * 2, dtype=object)),
            "target": ("stimulus", np.array([1.0, -1, 1, -1, 1, -1])),
            "layer": [1, 2],
            "unit": np.arange(U),
            "member": np.arange(M),
        },
        attrs={"format": "ndk-drift", "format_version": 1, "kind": "simulation",
               "config": "network: {}\n", "package_version": "0.1.0", "seed": 0,
               "time_units": "time units of the dynamics"},
    )
    return ds


def recording_dataset(trials: bool = True) -> xr.Dataset:
    rng = np.random.default_rng(1)
    act = rng.random((3, 7, 4, 2)) if trials else rng.random((3, 7, 4))
    act[1, 2] = np.nan  # a unit not tracked in session 1
    dims = ("time", "unit", "stimulus", "trial") if trials else ("time", "unit", "stimulus")
    coords = {
        "time": ("time", [0.0, 2.0, 9.0], {"units": "days"}),
        "stimulus": np.arange(4),
        "split": ("stimulus", np.array(["all"] * 4, dtype=object)),
        "target": ("stimulus", np.full(4, np.nan)),
        "unit": np.arange(7),
    }
    if trials:
        coords["trial"] = np.arange(2)
    return xr.Dataset(
        {"activity": (dims, act, {"units": "dF/F", "long_name": "mean response"})},
        coords=coords,
        attrs={"format": "ndk-drift", "format_version": 1, "kind": "recording",
               "time_units": "days"},
    )


def theory_dataset() -> xr.Dataset:
    attrs = {"units": "1", "long_name": "ensemble-mean output"}
    return xr.Dataset(
        {"output_mean": (("time", "stimulus"), np.zeros((3, 2)), attrs),
         "output_mean_error": (("time", "stimulus"), np.zeros((3, 2)), attrs)},
        coords={"time": ("time", [0.0, 1.0, 2.0], {"units": "time units of the dynamics"}),
                "stimulus": [0, 1],
                "split": ("stimulus", np.array(["train", "test"], dtype=object)),
                "target": ("stimulus", [1.0, -1.0])},
        attrs={"format": "ndk-drift", "format_version": 1, "kind": "theory",
               "config": "", "package_version": "0.1.0", "time_units": "time units"},
    )


def test_valid_datasets_pass():
    validate_dataset(simulation_dataset())
    validate_dataset(simulation_dataset(), kind="simulation")
    validate_dataset(recording_dataset())
    validate_dataset(recording_dataset(trials=False), kind="recording")
    validate_dataset(theory_dataset())


def _fails(ds, match, kind=None, **kw):
    with pytest.raises(ValueError, match=match):
        validate_dataset(ds, kind=kind, **kw)


@pytest.mark.parametrize("name", ["activity", "output", "readout", "loss"])
def test_missing_variable(name):
    _fails(simulation_dataset().drop_vars(name), rf"variable `{name}` is missing")


def test_wrong_dims():
    ds = simulation_dataset()
    ds["loss"] = ds["loss"].transpose("member", "time")
    _fails(ds, r"variable `loss` must have dims \('time', 'member'\)")
    ds = simulation_dataset()
    ds["activity"] = ds["activity"].transpose("time", "member", "unit", "layer", "stimulus")
    _fails(ds, "variable `activity` must have dims")


def test_time_not_increasing():
    _fails(simulation_dataset().assign_coords(time=[0.0, 1.0, 1.0, 2.0]),
           r"strictly increasing \(time\[1\] = 1.0 >= time\[2\] = 1.0\)")
    _fails(simulation_dataset().assign_coords(time=[0.0, 1.0, np.nan, 2.0]), "NaN or inf")


def test_simulation_time_starts_at_zero():
    _fails(simulation_dataset().assign_coords(time=[0.5, 1.0, 2.0, 3.0]), "must start at 0")


def test_time_units_are_required():
    ds = simulation_dataset()
    ds["time"].attrs = {}
    _fails(ds, "`time` lacks a `units` attribute")
    ds = simulation_dataset()
    del ds.attrs["time_units"]
    _fails(ds, "attribute `time_units` is missing")


def test_bad_split_values():
    ds = simulation_dataset().assign_coords(
        split=("stimulus", np.array(["train"] * 4 + ["validation"] * 2, dtype=object)))
    _fails(ds, r"`split` holds \['validation'\]")
    ds = simulation_dataset().assign_coords(
        split=("stimulus", np.array(["test", "train", "train", "train", "train", "test"],
                                    dtype=object)))
    _fails(ds, "train first, then test")
    # "all" is for recordings only
    ds = simulation_dataset().assign_coords(split=("stimulus", np.array(["all"] * S, dtype=object)))
    _fails(ds, r"`split` holds \['all'\]")


def test_missing_coordinates():
    _fails(simulation_dataset().drop_vars("target"), "coordinate `target`")
    _fails(simulation_dataset().drop_vars("member"), "coordinate `member` is missing")


def test_bad_index_coordinates():
    _fails(simulation_dataset().assign_coords(unit=[0, 1, 2, 4, 5]), "`unit` must be 0..4")
    _fails(simulation_dataset().assign_coords(layer=[0, 1]), "layer numbers >= 1")
    _fails(simulation_dataset().assign_coords(layer=[2, 1]), "layer numbers >= 1")
    _fails(simulation_dataset().assign_coords(stimulus=np.arange(S) + 1), "`stimulus` must be")


def test_format_attributes():
    ds = simulation_dataset()
    ds.attrs["format"] = "other"
    _fails(ds, "attribute `format`")
    ds = simulation_dataset()
    ds.attrs["format_version"] = 2
    _fails(ds, "attribute `format_version` must be 1")
    ds = simulation_dataset()
    ds.attrs["kind"] = "movie"
    _fails(ds, "attribute `kind` must be one of")
    _fails(simulation_dataset(), "attribute `kind` is 'simulation', expected 'recording'",
           kind="recording")
    ds = simulation_dataset()
    del ds.attrs["seed"]
    _fails(ds, "attribute `seed` is missing")
    with pytest.raises(ValueError, match="kind must be one of"):
        validate_dataset(simulation_dataset(), kind="nonsense")


def test_variable_attributes_are_required():
    ds = simulation_dataset()
    del ds["output"].attrs["units"]
    _fails(ds, "variable `output` lacks a `units` attribute")
    ds = simulation_dataset()
    del ds["loss"].attrs["long_name"]
    _fails(ds, "variable `loss` lacks a `long_name` attribute")


def test_values_are_checked():
    ds = simulation_dataset()
    ds["output"][0, 0, 0] = np.nan
    _fails(ds, "variable `output` holds 1 NaN values")
    ds = simulation_dataset()
    ds["activity"][0, 0, 0, 0, 0] = np.nan  # NaN activity only allowed in recordings
    _fails(ds, "variable `activity` holds 1 NaN")
    validate_dataset(ds, check_values=False)
    ds = simulation_dataset()
    ds["loss"][1, 1] = -1.0
    _fails(ds, "negative")
    ds = recording_dataset()
    ds["activity"][0, 0, 0, 0] = np.inf
    _fails(ds, "variable `activity` holds inf")


def test_all_problems_are_listed_at_once():
    ds = simulation_dataset().drop_vars("loss")
    ds.attrs["format_version"] = 0
    with pytest.raises(ValueError) as info:
        validate_dataset(ds)
    assert "format_version" in str(info.value) and "`loss` is missing" in str(info.value)


def test_recording_rules():
    ds = recording_dataset()
    ds["activity"] = ds["activity"].transpose("time", "stimulus", "unit", "trial")
    _fails(ds, r"order \('time', 'unit', 'stimulus', 'trial'\)")
    ds = recording_dataset(trials=False).rename({"unit": "neuron"})
    _fails(ds, r"unknown dims \['neuron'\]")
    _fails(recording_dataset().drop_vars("activity"), "variable `activity` is missing")
    # model variables stay optional, but must be shaped right when present
    ds = recording_dataset(trials=False)
    ds["loss"] = (("member", "time"), np.zeros((2, 3)), {"units": "1", "long_name": "l"})
    _fails(ds, "variable `loss` must have dims")
    # recordings need not start at 0
    later = recording_dataset().assign_coords(time=("time", [3.0, 4.0, 8.0], {"units": "days"}))
    validate_dataset(later)


def test_theory_rules():
    _fails(theory_dataset().drop_vars("output_mean"), "`output_mean` is missing")
    ds = theory_dataset()
    ds["output_mean_error"] = ds["output_mean_error"].T
    _fails(ds, "`output_mean_error` must have dims")


def test_not_a_dataset():
    with pytest.raises(ValueError, match="xarray.Dataset"):
        validate_dataset(xr.DataArray([1.0]))
