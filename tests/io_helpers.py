"""Shared pieces of the recording-importer tests: PV correlation and file writers."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np

START = dt.datetime(2023, 5, 2, 9, 30, tzinfo=dt.timezone.utc)


def pv_correlation(activity: np.ndarray) -> np.ndarray:
    """Population-vector correlation between sessions, pairwise complete over units.

    ``activity`` is (sessions, units, stimuli[, trials]); trials are averaged first.
    """
    a = np.asarray(activity, dtype=float)
    if a.ndim == 4:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            a = np.nanmean(a, axis=3)
    n = a.shape[0]
    out = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            ok = np.all(np.isfinite(a[i]), axis=1) & np.all(np.isfinite(a[j]), axis=1)
            if ok.sum() > 1:
                out[i, j] = np.corrcoef(a[i][ok].ravel(), a[j][ok].ravel())[0, 1]
    return out


def presentations(labels: np.ndarray, trials: np.ndarray):
    """(first frame, end frame, label, trial) of each run of equal non-NaN labels."""
    rows = []
    first = 0
    for f in range(1, labels.size + 1):
        if f < labels.size and labels[f] == labels[first] and trials[f] == trials[first]:
            continue
        if np.isfinite(labels[first]):
            rows.append((first, f, float(labels[first]), int(trials[first])))
        first = f
    return rows


def write_ophys_nwb(path: Path, session, days: float, frame_rate: float, speed: np.ndarray):
    """An NWB file with a DfOverF RoiResponseSeries, a trials table and running speed."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.ophys import (
        DfOverF,
        Fluorescence,
        ImageSegmentation,
        OpticalChannel,
        RoiResponseSeries,
    )

    nwb = NWBFile(
        session_description="planted-drift test session",
        identifier=path.stem,
        session_start_time=START + dt.timedelta(days=days),
    )
    device = nwb.create_device(name="microscope")
    channel = OpticalChannel(name="green", description="GCaMP", emission_lambda=520.0)
    plane = nwb.create_imaging_plane(
        name="plane0",
        optical_channel=channel,
        imaging_rate=frame_rate,
        description="layer 2/3",
        device=device,
        excitation_lambda=920.0,
        indicator="GCaMP6s",
        location="V1",
    )
    module = nwb.create_processing_module(name="ophys", description="optical physiology")
    segmentation = ImageSegmentation()
    module.add(segmentation)
    rois = segmentation.create_plane_segmentation(
        name="PlaneSegmentation", description="cells", imaging_plane=plane
    )
    for roi_id in session.unit_ids:
        rois.add_roi(image_mask=np.zeros((4, 4)), id=int(roi_id) + 1000)
    region = rois.create_roi_table_region(
        region=list(range(len(session.unit_ids))), description="all ROIs"
    )
    series = RoiResponseSeries(
        name="RoiResponseSeries",
        data=session.activity,
        rois=region,
        unit="n.a.",
        rate=frame_rate,
    )
    dff = DfOverF()
    module.add(dff)
    dff.add_roi_response_series(series)
    # A raw fluorescence series too, so that the reader has to prefer DfOverF.
    fluorescence = Fluorescence()
    module.add(fluorescence)
    fluorescence.add_roi_response_series(
        RoiResponseSeries(
            name="raw", data=session.activity + 5.0, rois=region, unit="a.u.", rate=frame_rate
        )
    )
    nwb.add_trial_column(name="stimulus", description="grating id")
    nwb.add_trial_column(name="repeat", description="trial number")
    half = 0.5 / frame_rate
    for first, end, label, trial in presentations(session.labels, session.trials):
        nwb.add_trial(
            start_time=first / frame_rate - half,
            stop_time=end / frame_rate - half,
            stimulus=label,
            repeat=trial,
        )
    nwb.add_acquisition(TimeSeries(name="running_speed", data=speed, unit="cm/s", rate=frame_rate))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)


def write_suite2p_plane(folder: Path, spks: np.ndarray, iscell: np.ndarray, fs: float):
    """A Suite2p plane folder: spks/F/Fneu (ROIs, frames), iscell (ROIs, 2), ops."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "spks.npy", spks.astype(np.float32))
    np.save(folder / "F.npy", (spks + 100.0).astype(np.float32))
    np.save(folder / "Fneu.npy", np.full_like(spks, 20.0, dtype=np.float32))
    np.save(folder / "iscell.npy", iscell)
    np.save(folder / "ops.npy", np.array({"fs": fs, "nframes": spks.shape[1]}, dtype=object))
