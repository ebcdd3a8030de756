"""read_nwb on NWB files written here with pynwb: ophys with planted drift, sorted units."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest
import scipy.io
from io_helpers import START, pv_correlation, write_ophys_nwb

pytest.importorskip("pynwb")

from drift.io import build_recording, from_sessions, read_cellreg, read_nwb, synthetic_recording


@pytest.fixture(scope="module")
def ophys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nwb")
    rec = synthetic_recording(n_sessions=5, n_units=80, seed=11, n_trials=6)
    paths = []
    for k, session in enumerate(rec.sessions):
        path = folder / f"day{int(rec.session_times[k]):02d}.nwb"
        write_ophys_nwb(path, session, rec.session_times[k], rec.frame_rate, rec.speed[k])
        paths.append(path)
    scipy.io.savemat(
        folder / "cellRegistered.mat",
        {"cell_registered_struct": {"cell_to_index_map": rec.cellreg_map}},
    )
    return rec, paths, folder


def _read(path):
    return read_nwb(
        path,
        label_column="stimulus",
        trial_column="repeat",
        include_series="running_speed",
        include_threshold=2.0,
    )


def test_ophys_session_contents(ophys):
    rec, paths, _ = ophys
    s = _read(paths[1])
    truth = rec.sessions[1]
    np.testing.assert_allclose(s.activity, truth.activity)  # DfOverF preferred over raw
    np.testing.assert_array_equal(s.labels, truth.labels)
    np.testing.assert_array_equal(s.include, truth.include)
    np.testing.assert_array_equal(
        s.trials[np.isfinite(truth.labels)], truth.trials[np.isfinite(truth.labels)]
    )
    np.testing.assert_array_equal(s.unit_ids, truth.unit_ids + 1000)
    assert s.units == "dF/F"
    assert s.time == START + dt.timedelta(days=2)
    raw = read_nwb(paths[1], series="raw")
    np.testing.assert_allclose(raw.activity, truth.activity + 5.0)


def test_ophys_planted_drift_with_cellreg(ophys):
    rec, paths, folder = ophys
    sessions = [_read(p) for p in paths]
    reg = read_cellreg(folder / "cellRegistered.mat", [s.activity.shape[1] for s in sessions])
    ds = from_sessions(sessions, reg, keep_trials=False)
    direct = from_sessions(rec.sessions, rec.registration, keep_trials=False)
    np.testing.assert_allclose(ds["activity"].values, direct["activity"].values, equal_nan=True)
    np.testing.assert_allclose(ds["time"].values, rec.session_times)
    assert ds.attrs["time_origin"] == "2023-05-02T09:30:00Z"
    got = pv_correlation(ds["activity"].values)
    np.testing.assert_allclose(got, rec.expected_pv_correlation(), atol=0.12)
    # Matching by ROI id gives the same units (ids are stable in these files).
    by_id = from_sessions(sessions, "unit_ids", keep_trials=False)
    np.testing.assert_allclose(by_id["activity"].values, direct["activity"].values, equal_nan=True)
    assert by_id["unit_id"].values.tolist() == (np.arange(80) + 1000).tolist()


def test_convert_spec_with_nwb(ophys, tmp_path):
    rec, paths, folder = ophys
    spec = {
        "reader": "nwb",
        "sessions": [{"path": p.name} for p in paths],
        "registration": "cellRegistered.mat",
        "reader_options": {
            "trial_column": "repeat",
            "include_series": "running_speed",
            "include_threshold": 2.0,
        },
    }
    ds = build_recording(spec, base_dir=folder)
    assert ds.sizes["trial"] == max(int(np.nanmax(s.trials)) + 1 for s in rec.sessions)
    assert ds.sizes["unit"] == 80


def _write_units_nwb(path, days, unit_ids, rates, stim_order, duration=0.5):
    """Poisson spikes during 0.5 s grating presentations separated by 0.25 s of grey."""
    from pynwb import NWBHDF5IO, NWBFile

    rng = np.random.default_rng(int(days))
    nwb = NWBFile(
        session_description="sorted units",
        identifier=path.stem,
        session_start_time=START + dt.timedelta(days=days),
    )
    nwb.add_trial_column(name="orientation", description="grating orientation (deg)")
    spikes = [[] for _ in unit_ids]
    shown = []
    t = 1.0
    for s in stim_order:
        nwb.add_trial(start_time=t, stop_time=t + duration, orientation=float(45 * s))
        shown.append((t, t + duration, s))
        for j in range(len(unit_ids)):
            n = rng.poisson(rates[j, s] * duration)
            spikes[j].extend(np.sort(rng.uniform(t, t + duration, n)).tolist())
        for j in range(len(unit_ids)):  # spikes in the grey gap must not count
            spikes[j].extend(np.sort(rng.uniform(t + duration, t + duration + 0.25, 3)).tolist())
        t += duration + 0.25
    for uid, st in zip(unit_ids, spikes, strict=True):
        nwb.add_unit(spike_times=st, id=int(uid))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return spikes, shown


def test_units_binned_rates(tmp_path):
    rng = np.random.default_rng(5)
    order = np.tile(np.arange(4), 5)
    rates = rng.uniform(1, 30, size=(6, 4))
    ids = [np.array([10, 11, 12, 13]), np.array([11, 13, 14, 15])]
    paths, written = [], []
    for k, (days, u) in enumerate(zip([0.0, 3.0], ids, strict=True)):
        path = tmp_path / f"units{k}.nwb"
        written.append(_write_units_nwb(path, days, u, rates[u - 10], rng.permutation(order)))
        paths.append(path)
    sessions = [read_nwb(p, label_column="orientation", bin_size=0.05) for p in paths]
    assert sessions[0].units == "spikes/s"
    ds = from_sessions(sessions, "unit_ids", keep_trials=False)
    assert ds["unit_id"].values.tolist() == [10, 11, 12, 13, 14, 15]
    np.testing.assert_allclose(ds["stimulus_value"].values, [0, 45, 90, 135])
    np.testing.assert_allclose(ds["time"].values, [0.0, 3.0])
    act = ds["activity"].values
    # The bins tile each presentation, so the mean rate is spikes shown / time shown.
    for k in range(2):
        spikes, shown = written[k]
        for j, uid in enumerate(ids[k]):
            st = np.asarray(spikes[j])
            for stim in range(4):
                spans = [(a, b) for a, b, s in shown if s == stim]
                count = sum(((st >= a) & (st < b)).sum() for a, b in spans)
                expected = count / (0.5 * len(spans))
                assert act[k, uid - 10, stim] == pytest.approx(expected)
    assert np.all(np.isnan(act[0, 4:])) and np.all(np.isnan(act[1, [0, 2]]))


def test_bad_nwb_input(tmp_path, ophys):
    _, paths, _ = ophys
    text = tmp_path / "notes.nwb"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match=r"notes\.nwb: not an HDF5 file"):
        read_nwb(text)
    with pytest.raises(ValueError, match=r"day00\.nwb: interval table 'trials' has no column 'x'"):
        read_nwb(paths[0], label_column="x")
    with pytest.raises(ValueError, match=r"day00\.nwb: no interval table 'gratings'"):
        read_nwb(paths[0], intervals="gratings")
    with pytest.raises(ValueError, match=r"day00\.nwb: no RoiResponseSeries named 'dff'"):
        read_nwb(paths[0], series="dff")
    with pytest.raises(ValueError, match=r"day00\.nwb: no Units table"):
        read_nwb(paths[0], signal="units")


def test_position_label_series_binned(tmp_path):
    """Place-cell-like session: position TimeSeries as the label, laps as trials."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel, RoiResponseSeries

    rate = 10.0
    n = 600
    position = (np.arange(n) * 1.5) % 150.0  # 100-frame laps over a 150 cm track
    centres = np.array([20.0, 75.0, 130.0])
    act = np.exp(-0.5 * ((position[:, None] - centres[None]) / 10.0) ** 2)
    nwb = NWBFile(session_description="track", identifier="track", session_start_time=START)
    device = nwb.create_device(name="microscope")
    plane = nwb.create_imaging_plane(
        name="plane0",
        optical_channel=OpticalChannel(name="g", description="g", emission_lambda=520.0),
        imaging_rate=rate,
        description="CA1",
        device=device,
        excitation_lambda=920.0,
        indicator="GCaMP6f",
        location="CA1",
    )
    module = nwb.create_processing_module(name="ophys", description="ophys")
    seg = ImageSegmentation()
    module.add(seg)
    rois = seg.create_plane_segmentation(name="ps", description="d", imaging_plane=plane)
    for _ in range(3):
        rois.add_roi(image_mask=np.zeros((4, 4)))
    dff = DfOverF()
    module.add(dff)
    dff.add_roi_response_series(
        RoiResponseSeries(
            name="dff",
            data=act,
            rois=rois.create_roi_table_region(region=[0, 1, 2], description="all"),
            unit="n.a.",
            rate=rate,
        )
    )
    behaviour = nwb.create_processing_module(name="behavior", description="position")
    behaviour.add(TimeSeries(name="position", data=position, unit="cm", rate=rate))
    speed = np.where(np.arange(n) < 500, 15.0, 0.0)  # stops running for the last lap
    behaviour.add(TimeSeries(name="speed", data=speed, unit="cm/s", rate=rate))
    for lap in range(6):
        nwb.add_trial(start_time=lap * 10.0 - 0.05, stop_time=(lap + 1) * 10.0 - 0.05)
    path = tmp_path / "track.nwb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)

    s = read_nwb(path, label_series="position", include_series="speed", include_threshold=5.0)
    np.testing.assert_allclose(s.labels, position)
    assert s.include.sum() == 500
    np.testing.assert_array_equal(np.unique(s.trials), np.arange(6))
    ds = from_sessions([s], bins=15, label_range=(0, 150))
    assert ds.sizes["trial"] == 5 + 1  # the sixth lap exists but is excluded: NaN
    assert np.all(np.isnan(ds["activity"].values[0, :, :, 5]))
    peaks = ds["activity"].mean("trial").values[0].argmax(axis=1)
    np.testing.assert_array_equal(peaks, [2, 7, 13])  # bins holding 20, 75, 130 cm
    none = read_nwb(path, intervals=None, label_series="position")
    assert none.trials is None and np.all(np.isfinite(none.labels))
