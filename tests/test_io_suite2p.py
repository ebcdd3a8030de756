"""read_suite2p on Suite2p-like folders written here, fed through the same path."""

from __future__ import annotations

import numpy as np
import pytest
from io_helpers import pv_correlation, write_suite2p_plane

from drift.io import from_sessions, read_suite2p, synthetic_recording
from drift.io.suite2p import suite2p_planes


def _junk_interleaved(spks: np.ndarray, rng: np.random.Generator):
    """Add non-cell ROIs between the cells; returns (all ROIs, iscell)."""
    n = spks.shape[0]
    is_cell = np.r_[np.ones(n, bool), np.zeros(n // 3, bool)]
    rng.shuffle(is_cell)
    rois = np.empty((is_cell.size, spks.shape[1]))
    rois[is_cell] = spks
    rois[~is_cell] = 1e3 * rng.random(((~is_cell).sum(), spks.shape[1]))
    prob = np.where(is_cell, 0.9, 0.2)
    return rois, np.stack([is_cell.astype(float), prob], axis=1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("s2p")
    rec = synthetic_recording(n_sessions=4, n_units=60, seed=21, n_trials=6)
    rng = np.random.default_rng(0)
    out = []
    for k, s in enumerate(rec.sessions):
        spks = s.activity.T
        session = root / f"day{k}"
        if k == 0:  # two planes, the cells split between them
            half = spks.shape[0] // 2
            for p, part in enumerate([spks[:half], spks[half:]]):
                rois, iscell = _junk_interleaved(part, rng)
                write_suite2p_plane(session / "suite2p" / f"plane{p}", rois, iscell, 15.0)
        else:
            rois, iscell = _junk_interleaved(spks, rng)
            write_suite2p_plane(session / "suite2p" / "plane0", rois, iscell, 15.0)
        np.save(session / "labels.npy", s.labels)
        np.save(session / "running.npy", s.include)
        np.save(session / "trials.npy", s.trials)
        out.append(session)
    return rec, out


def test_planes_found(folders):
    _, paths = folders
    assert [p.name for p in suite2p_planes(paths[0])] == ["plane0", "plane1"]
    assert suite2p_planes(paths[1] / "suite2p" / "plane0") == [paths[1] / "suite2p" / "plane0"]


def test_suite2p_recovers_planted_drift(folders):
    rec, paths = folders
    sessions = [
        read_suite2p(
            p, p / "labels.npy", rec.session_times[k], include=p / "running.npy", trials=None
        )
        for k, p in enumerate(paths)
    ]
    for s, truth in zip(sessions, rec.sessions, strict=True):
        np.testing.assert_allclose(s.activity, truth.activity, rtol=1e-6, atol=1e-6)  # float32
        np.testing.assert_allclose(s.frame_times[1], 1 / 15.0)
    ds = from_sessions(sessions, rec.registration)
    direct = from_sessions(rec.sessions, rec.registration, keep_trials=False)
    np.testing.assert_allclose(ds["activity"].values, direct["activity"].values, atol=1e-5)
    got = pv_correlation(ds["activity"].values)
    np.testing.assert_allclose(got, rec.expected_pv_correlation(), atol=0.12)


def test_signals_and_iscell_threshold(folders):
    rec, paths = folders
    p = paths[1]
    s = rec.sessions[1]
    fc = read_suite2p(p, s.labels, 0.0, signal="Fc")
    np.testing.assert_allclose(fc.activity, s.activity + 100.0 - 0.7 * 20.0, atol=1e-4)
    dff = read_suite2p(p, s.labels, 0.0, signal="dff")
    f0 = np.percentile(fc.activity, 8.0, axis=0)
    np.testing.assert_allclose(dff.activity, (fc.activity - f0) / np.abs(f0), atol=1e-6)
    assert dff.units == "dF/F"
    loose = read_suite2p(p, s.labels, 0.0, iscell_threshold=0.1)  # the junk ROIs too
    assert loose.activity.shape[1] > fc.activity.shape[1]


def test_bad_suite2p_input(folders, tmp_path):
    rec, paths = folders
    s = rec.sessions[1]
    with pytest.raises(ValueError, match=r"day1: labels has shape \(5,\) but the recording has"):
        read_suite2p(paths[1], np.zeros(5), 0.0)
    with pytest.raises(ValueError, match=r"empty: no F\.npy, plane\* folders or suite2p/"):
        (tmp_path / "empty").mkdir()
        read_suite2p(tmp_path / "empty", s.labels, 0.0)
    bad = tmp_path / "bad" / "plane0"
    bad.mkdir(parents=True)
    (bad / "F.npy").write_text("not numpy")
    np.save(bad / "spks.npy", np.zeros((3, 10)))
    with pytest.raises(ValueError, match=r"bad/plane0/F\.npy: not a numeric \.npy array"):
        read_suite2p(bad, np.zeros(10), 0.0, signal="F")
    uneven = tmp_path / "uneven"
    write_suite2p_plane(uneven / "plane0", np.zeros((2, 10)), np.ones((2, 2)), 10.0)
    write_suite2p_plane(uneven / "plane1", np.zeros((2, 11)), np.ones((2, 2)), 10.0)
    with pytest.raises(ValueError, match=r"uneven: plane1 has 11 frames, plane0 has 10"):
        read_suite2p(uneven, np.zeros(10), 0.0)
