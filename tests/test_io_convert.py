"""convert_recording (spec -> netCDF / zarr) and the atomic writer."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import xarray as xr
import yaml

from drift.io import convert_recording, from_sessions, synthetic_recording, write_dataset
from drift.io.schema import validate_dataset


@pytest.fixture(scope="module")
def spec_folder(tmp_path_factory):
    """A timeseries spec: .npy files per session, a v7.3-style CellReg registration."""
    root = tmp_path_factory.mktemp("convert")
    rec = synthetic_recording(n_sessions=3, n_units=30, seed=4, n_trials=4)
    sessions = []
    for k, s in enumerate(rec.sessions):
        names = {}
        for key in ("activity", "labels", "include", "trials"):
            names[key] = f"s{k}_{key}.npy"
            np.save(root / names[key], getattr(s, key))
        sessions.append({**names, "time": f"2024-02-{1 + 2 * k:02d}"})
    with h5py.File(root / "cellRegistered.mat", "w", userblock_size=512) as f:
        group = f.create_group("cell_registered_struct")
        group.create_dataset("cell_to_index_map", data=rec.cellreg_map.T.astype(float))
    spec = {
        "reader": "timeseries",
        "sessions": sessions,
        "registration": "cellRegistered.mat",
        "units": "dF/F",
        "keep_trials": False,
    }
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    return rec, root, spec


def _open(path):
    if path.suffix == ".zarr":
        return xr.open_dataset(path, engine="zarr", consolidated=False)
    return xr.open_dataset(path, engine="h5netcdf")


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_convert_round_trip(spec_folder, tmp_path, suffix):
    rec, root, _ = spec_folder
    out = tmp_path / f"recording{suffix}"
    ds = convert_recording(root / "spec.yaml", out)
    direct = from_sessions(rec.sessions, rec.registration, keep_trials=False)
    np.testing.assert_allclose(ds["activity"].values, direct["activity"].values, equal_nan=True)
    with _open(out) as back:
        back = back.load()
    np.testing.assert_allclose(back["activity"].values, ds["activity"].values, equal_nan=True)
    validate_dataset(back, "recording")
    np.testing.assert_allclose(back["time"].values, [0.0, 2.0, 4.0])
    assert back["time"].attrs["units"] == "days"
    assert back.attrs["kind"] == "recording" and back.attrs["format"] == "ndk-drift"
    assert int(back.attrs["format_version"]) == 1
    assert back.attrs["time_origin"] == "2024-02-01T00:00:00Z"
    assert back["activity"].attrs["units"] == "dF/F"
    assert back["split"].values.tolist() == ["all"] * back.sizes["stimulus"]


def test_convert_json_spec_and_no_silent_overwrite(spec_folder, tmp_path):
    _, root, spec = spec_folder
    (root / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "rec.nc"
    out.write_bytes(b"earlier result")
    with pytest.raises(FileExistsError):
        convert_recording(root / "spec.json", out)
    assert out.read_bytes() == b"earlier result"
    convert_recording(root / "spec.json", out, overwrite=True)
    with _open(out) as back:
        assert back.sizes["time"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.nc"]


def test_failed_write_keeps_old_output(tmp_path, monkeypatch):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    for name in ("old.nc", "old.zarr"):
        target = tmp_path / name
        write_dataset(ds, target)

        def boom(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
        monkeypatch.setattr(xr.Dataset, "to_zarr", boom)
        with pytest.raises(RuntimeError, match="disk full"):
            write_dataset(ds * 2, target, overwrite=True)
        monkeypatch.undo()
        with _open(target) as back:
            np.testing.assert_array_equal(back["a"].values, [0, 1, 2])
        write_dataset(ds * 2, target, overwrite=True)  # a zarr folder is swapped in whole
        with _open(target) as back:
            np.testing.assert_array_equal(back["a"].values, [0, 2, 4])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.nc", "old.zarr"]


def test_bad_specs(spec_folder, tmp_path):
    _, root, spec = spec_folder
    with pytest.raises(ValueError, match="unknown keys \\['sesions'\\]"):
        convert_recording({**spec, "sesions": []}, tmp_path / "a.nc", base_dir=root)
    with pytest.raises(ValueError, match="reader must be one of"):
        convert_recording({**spec, "reader": "tiff"}, tmp_path / "a.nc", base_dir=root)
    with pytest.raises(ValueError, match=r"sessions\[0\] needs a time"):
        bad = {**spec, "sessions": [{k: v for k, v in spec["sessions"][0].items() if k != "time"}]}
        convert_recording(bad, tmp_path / "a.nc", base_dir=root)
    with pytest.raises(ValueError, match="reader_options apply to the nwb and suite2p"):
        convert_recording({**spec, "reader_options": {"x": 1}}, tmp_path / "a.nc", base_dir=root)
    nwb_spec = {"reader": "nwb", "sessions": ["a.nwb"], "reader_options": {"time": 3}}
    with pytest.raises(ValueError, match=r"reader_options \['time'\] are not options"):
        convert_recording(nwb_spec, tmp_path / "a.nc", base_dir=root)
    with pytest.raises(ValueError, match="cannot tell the format"):
        convert_recording(spec, tmp_path / "a.csv", base_dir=root)
    reversed_times = {
        **spec,
        "sessions": [dict(s, time=t) for s, t in zip(spec["sessions"], [5, 3, 9], strict=True)],
    }
    with pytest.raises(ValueError, match=r"not strictly increasing.*session 1 \(.*s1_activity"):
        convert_recording(reversed_times, tmp_path / "a.nc", base_dir=root)
    np.save(tmp_path / "short_labels.npy", np.zeros(5))
    short = {
        **spec,
        "sessions": [dict(spec["sessions"][0], labels=str(tmp_path / "short_labels.npy"))],
        "registration": None,
    }
    with pytest.raises(ValueError, match=r"s0_activity\.npy\): labels has shape"):
        convert_recording(short, tmp_path / "a.nc", base_dir=root)
    (tmp_path / "spec.yaml").write_text("reader: [unclosed")
    with pytest.raises(ValueError, match=r"spec\.yaml: not valid YAML/JSON"):
        convert_recording(tmp_path / "spec.yaml", tmp_path / "a.nc")
    assert not (tmp_path / "a.nc").exists()


def test_registration_out_of_range_in_spec_names_file(spec_folder, tmp_path):
    rec, root, spec = spec_folder
    bad = rec.cellreg_map.copy()
    bad[0, 1] = 999
    np.save(tmp_path / "reg.npy", bad)
    spec = dict(spec, registration=str(tmp_path / "reg.npy"))
    with pytest.raises(
        ValueError, match=r"reg\.npy: cell index 998 .* session 1 \(.*s1_activity\.npy\)"
    ):
        convert_recording(spec, tmp_path / "a.nc", base_dir=root)


def test_arrays_reader(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(2):
        np.save(tmp_path / f"r{k}.npy", rng.normal(size=(4 + k, 6)))
        np.save(tmp_path / f"id{k}.npy", np.arange(k, 4 + 2 * k))
    spec = {
        "reader": "arrays",
        "sessions": [
            {"responses": f"r{k}.npy", "unit_ids": f"id{k}.npy", "time": float(3 * k)}
            for k in range(2)
        ],
        "units": "events/s",
    }
    ds = convert_recording(spec, tmp_path / "out.nc", base_dir=tmp_path)
    assert ds["unit_id"].values.tolist() == [0, 1, 2, 3, 4, 5]
    assert ds["activity"].shape == (2, 6, 6)
    assert np.all(np.isnan(ds["activity"].values[0, [4, 5]]))
    assert np.all(np.isnan(ds["activity"].values[1, 0]))
