"""from_arrays / from_timeseries / from_sessions and the synthetic planted-drift recording."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from io_helpers import pv_correlation

from drift.io import (
    RecordingWarning,
    from_arrays,
    from_sessions,
    from_timeseries,
    session_days,
    synthetic_recording,
)
from drift.io.schema import validate_dataset


@pytest.fixture(scope="module")
def rec():
    return synthetic_recording(seed=3)


def _check_format(ds, with_trials=False):
    validate_dataset(ds, "recording")
    assert ds.attrs["format"] == "ndk-drift"
    assert ds.attrs["format_version"] == 1
    assert ds.attrs["kind"] == "recording"
    assert ds.attrs["time_units"] == "days"
    dims = ("time", "unit", "stimulus") + (("trial",) if with_trials else ())
    assert ds["activity"].dims == dims
    assert ds["time"].attrs["units"] == "days"
    assert float(ds["time"][0]) == 0.0
    assert np.all(np.diff(ds["time"].values) > 0)
    np.testing.assert_array_equal(ds["unit"].values, np.arange(ds.sizes["unit"]))
    np.testing.assert_array_equal(ds["stimulus"].values, np.arange(ds.sizes["stimulus"]))
    assert set(ds["split"].values.tolist()) == {"all"}
    assert ds["target"].dtype == float
    assert "unit_id" in ds.coords
    for name in ds.data_vars:
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs


# ----------------------------------------------------------------- planted drift recovered


def test_planted_drift_recovered_from_timeseries(rec):
    ds = from_sessions(rec.sessions, rec.registration, keep_trials=False)
    _check_format(ds)
    got = pv_correlation(ds["activity"].values)
    truth = rec.tuning.copy()
    truth[~np.isfinite(ds["activity"].values[..., 0])] = np.nan
    realised = pv_correlation(truth)
    # Against the realised tuning: only frame noise and the calcium kernel separate them.
    np.testing.assert_allclose(got, realised, atol=0.03)
    # Against the planted curve floor + (1 - floor) exp(-dt / tau): sampling error only.
    np.testing.assert_allclose(got, rec.expected_pv_correlation(), atol=0.1)
    lag = rec.session_times - rec.session_times[0]
    assert np.all(np.diff(got[0]) < 0.05)  # decays with lag
    assert got[0, -1] < got[0, 1] - 0.15
    assert lag[-1] == ds["time"].values[-1]


def test_missing_units_are_nan_never_zero(rec):
    ds = from_sessions(rec.sessions, rec.registration, keep_trials=False)
    act = ds["activity"].values
    absent = rec.registration.T < 0  # (sessions, units)
    assert absent.any()
    assert np.all(np.isnan(act[absent]))
    assert np.all(np.isfinite(act[~absent]))
    np.testing.assert_array_equal(ds["cell_index"].values, rec.registration.T)


def test_unit_in_only_one_session(rec):
    reg = rec.registration.copy()
    u = int(np.flatnonzero((reg >= 0).all(axis=1))[0])
    reg[u, 1:] = -1
    ds = from_sessions(rec.sessions, reg, keep_trials=False)
    act = ds["activity"].values[:, u]
    assert np.all(np.isfinite(act[0]))
    assert np.all(np.isnan(act[1:]))


def test_trials_dimension_kept(rec):
    ds = from_sessions(rec.sessions, rec.registration)
    _check_format(ds, with_trials=True)
    n_trials = [int(np.nanmax(s.trials)) + 1 for s in rec.sessions]
    assert ds.sizes["trial"] == max(n_trials)
    occ = ds["occupancy"].values
    for k, n in enumerate(n_trials):
        assert np.all(occ[k, :, n:] == 0)  # sessions with fewer trials are padded
    # Trial-averaging weighted by occupancy reproduces the trial-free means.
    flat = from_sessions(rec.sessions, rec.registration, keep_trials=False)
    act = np.nan_to_num(ds["activity"].values)
    w = occ[:, None, :, :]
    weighted = (act * w).sum(axis=3) / w.sum(axis=3)
    present = np.isfinite(flat["activity"].values)
    np.testing.assert_allclose(weighted[present], flat["activity"].values[present])


def test_include_mask_is_applied(rec):
    s = rec.sessions[0]
    corrupted = s.activity.copy()
    corrupted[~s.include] = 1e6
    kwargs = dict(include=[s.include], registration=None)
    clean = from_timeseries([s.activity], [s.labels], [0.0], **kwargs)
    dirty = from_timeseries([corrupted], [s.labels], [0.0], **kwargs)
    np.testing.assert_allclose(clean["activity"].values, dirty["activity"].values)
    frames = np.isfinite(s.labels) & s.include
    assert clean["occupancy"].values.sum() == frames.sum()


def test_occupancy_normalised_mean_by_hand():
    act = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0], [7.0, 40.0], [100.0, 0.0]])
    labels = np.array([0, 0, 1, 1, 1])
    include = np.array([True, True, True, True, False])
    ds = from_timeseries([act], [labels], [0.0], include=[include])
    np.testing.assert_allclose(ds["activity"].values[0], [[2.0, 6.0], [15.0, 35.0]])
    np.testing.assert_array_equal(ds["occupancy"].values[0], [2, 2])
    np.testing.assert_array_equal(ds["stimulus_value"].values, [0, 1])


def test_binned_continuous_labels_and_unvisited_bins():
    rng = np.random.default_rng(0)
    position = np.concatenate([rng.uniform(0, 60, 400), rng.uniform(80, 100, 100)])
    act = np.stack([position, -position], axis=1)  # mean equals the mean position in a bin
    with pytest.warns(RecordingWarning, match="stimuli \\[3\\]"):
        ds = from_timeseries([act], [position], [0.0], bins=5, label_range=(0, 100))
    means = ds["activity"].values[0, 0]
    np.testing.assert_allclose(ds["stimulus_value"].values, [10, 30, 50, 70, 90])
    assert np.isnan(means[3])  # the 60-80 bin is never visited
    for b in (0, 1, 2, 4):
        sel = (position >= 20 * b) & (position < 20 * b + 20)
        assert means[b] == pytest.approx(position[sel].mean())
    np.testing.assert_allclose(ds.attrs["stimulus_bin_edges"], np.linspace(0, 100, 6))


def test_string_labels_and_explicit_stimuli():
    act = np.arange(8.0)[:, None]
    labels = np.array(["grey", "A", "A", "B", "B", "grey", "C", ""])
    ds = from_timeseries([act], [labels], [0.0], stimuli=["B", "A"])
    np.testing.assert_allclose(ds["activity"].values[0, 0], [3.5, 1.5])
    assert ds["stimulus_value"].values.tolist() == ["B", "A"]
    ds = from_timeseries([act], [labels], [0.0])
    assert ds["stimulus_value"].values.tolist() == ["A", "B", "C", "grey"]


def test_stimulus_unvisited_in_one_session_warns():
    act = [np.ones((4, 2)), np.ones((3, 2))]
    labels = [np.array([0, 1, 2, 2]), np.array([0, 0, 1])]
    with pytest.warns(RecordingWarning, match="session 1.*stimuli \\[2\\]"):
        ds = from_timeseries(act, labels, [0.0, 1.0])
    assert np.all(np.isnan(ds["activity"].values[1, :, 2]))
    assert np.all(np.isfinite(ds["activity"].values[0]))


def test_session_datetimes_become_days():
    start = dt.datetime(2023, 1, 1, 8, 0, tzinfo=dt.timezone.utc)
    times = [start, start + dt.timedelta(days=2, hours=12), "2023-01-06T08:00:00+00:00"]
    days, origin = session_days(times)
    np.testing.assert_allclose(days, [0.0, 2.5, 5.0])
    assert origin == "2023-01-01T08:00:00Z"
    for unit in ("h", "ns"):
        days, _ = session_days(
            np.array(["2023-01-01", "2023-01-03T12"], dtype=f"datetime64[{unit}]")
        )
        np.testing.assert_allclose(days, [0, 2.5])
    days, origin = session_days([3.0, 4.5])
    np.testing.assert_allclose(days, [0, 1.5])
    assert origin is None


# ----------------------------------------------------------------- from_arrays


def test_from_arrays_matches_unit_ids_and_pads_trials():
    r0 = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    r1 = 100 + np.arange(3 * 3 * 4, dtype=float).reshape(3, 3, 4)
    ds = from_arrays(
        [r0, r1],
        [dt.date(2024, 3, 1), dt.date(2024, 3, 8)],
        [np.array([7, 3]), np.array([3, 9, 1])],
        targets=[1.0, -1.0, 1.0],
        split=["train", "train", "test"],
        sources=["a.npy", "b.npy"],
    )
    assert ds["activity"].dims == ("time", "unit", "stimulus", "trial")
    assert ds["unit_id"].values.tolist() == [1, 3, 7, 9]
    np.testing.assert_allclose(ds["time"].values, [0.0, 7.0])
    act = ds["activity"].values
    np.testing.assert_array_equal(act[0, 2, :, :2], r0[0])  # id 7
    np.testing.assert_array_equal(act[0, 1, :, :2], r0[1])  # id 3
    assert np.all(np.isnan(act[0, 1, :, 2:]))  # padding
    assert np.all(np.isnan(act[0, 0])) and np.all(np.isnan(act[0, 3]))
    np.testing.assert_array_equal(act[1, 0], r1[2])  # id 1
    assert ds["split"].values.tolist() == ["train", "train", "test"]
    assert ds["target"].values.tolist() == [1.0, -1.0, 1.0]
    assert ds.attrs["sources"] == "a.npy\nb.npy"


def test_from_arrays_stacked_array():
    arr = np.random.default_rng(1).normal(size=(3, 5, 4))
    ds = from_arrays(arr, [0, 1, 5], stimulus_values=[0, 45, 90, 135], units="dF/F")
    _check_format(ds)
    np.testing.assert_array_equal(ds["activity"].values, arr)
    assert ds["activity"].attrs["units"] == "dF/F"


# ----------------------------------------------------------------- bad input


def test_label_length_mismatch_names_session_source():
    act = [np.zeros((10, 2)), np.zeros((12, 2))]
    labels = [np.zeros(10), np.zeros(11)]
    with pytest.raises(ValueError, match=r"session 1 \(day2\.nwb\): labels has shape \(11,\)"):
        from_timeseries(act, labels, [0, 1], sources=["day1.nwb", "day2.nwb"])


def test_non_monotonic_session_times():
    act = [np.zeros((4, 2))] * 3
    labels = [np.zeros(4)] * 3
    with pytest.raises(ValueError, match=r"not strictly increasing.*session 2 \(c\.nwb\)"):
        from_timeseries(act, labels, [0, 3, 2], sources=["a.nwb", "b.nwb", "c.nwb"])
    with pytest.raises(ValueError, match="not strictly increasing"):
        from_arrays(np.zeros((2, 3, 4)), ["2023-01-02", "2023-01-01"])


def test_registration_out_of_range_names_session():
    act = [np.zeros((4, 2)), np.zeros((4, 3))]
    labels = [np.zeros(4)] * 2
    reg = np.array([[0, 0], [1, 3]])
    with pytest.raises(ValueError, match=r"cell index 3 .* session 1 \(b\.npy\), which has 3"):
        from_timeseries(act, labels, [0, 1], reg, sources=["a.npy", "b.npy"])


def test_cells_differ_without_registration():
    with pytest.raises(ValueError, match="different numbers of cells"):
        from_timeseries([np.zeros((4, 2)), np.zeros((4, 3))], [np.zeros(4)] * 2, [0, 1])


def test_include_mask_wrong_length_and_type():
    act = [np.zeros((4, 2))]
    with pytest.raises(ValueError, match="include mask has shape"):
        from_timeseries(act, [np.zeros(4)], [0], include=[np.ones(5, bool)])
    with pytest.raises(ValueError, match="include mask must be boolean"):
        from_timeseries(act, [np.zeros(4)], [0], include=[np.full(4, 0.5)])
