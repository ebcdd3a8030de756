"""Read one NWB session (pynwb) into a :class:`~drift.io.recordings.SessionTimeseries`.

A session's activity comes from either

* optical physiology: a ``RoiResponseSeries`` (inside ``DfOverF`` or ``Fluorescence``,
  usually in the ``ophys`` processing module), frames x ROIs; or
* sorted units: the ``Units`` table's spike times, binned into rates (spikes/s).

The per-frame stimulus label comes from a column of an interval table (``trials`` or any
table of ``nwbfile.intervals``, e.g. ``grating_presentations``): each frame takes the
value of the interval containing its time, frames outside every interval are unlabelled.
Alternatively the label is a ``TimeSeries`` (e.g. track position), sampled at each
frame time. An include mask can be made by thresholding another ``TimeSeries`` (e.g.
running speed). Times are seconds from the session start; the session time is the
file's ``session_start_time``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from drift.io.recordings import SessionTimeseries

__all__ = ["read_nwb"]

_ROI_PARENTS = ("DfOverF", "Fluorescence")


def _fail(path: Path, problem: str) -> ValueError:
    return ValueError(f"NWB file {path}: {problem}")


def _series_times(ts: Any, n: int) -> np.ndarray:
    if ts.timestamps is not None:
        return np.asarray(ts.timestamps[:], dtype=float)
    start = float(ts.starting_time or 0.0)
    return start + np.arange(n) / float(ts.rate)


def _roi_series(nwbfile: Any, name: str | None, path: Path) -> Any:
    from pynwb.ophys import RoiResponseSeries

    found = [o for o in nwbfile.objects.values() if isinstance(o, RoiResponseSeries)]
    if not found:
        raise _fail(path, "no RoiResponseSeries (ophys DfOverF / Fluorescence) in the file")

    def label(o: Any) -> str:
        parent = o.parent.name if o.parent is not None else ""
        return f"{parent}/{o.name}" if parent else o.name

    if name is not None:
        chosen = [o for o in found if name in (o.name, label(o))]
        if len(chosen) != 1:
            names = sorted(label(o) for o in found)
            what = "no" if not chosen else "several"
            raise _fail(path, f"{what} RoiResponseSeries named {name!r} (available: {names})")
        return chosen[0]
    for parent in _ROI_PARENTS:
        chosen = [o for o in found if type(o.parent).__name__ == parent]
        if len(chosen) == 1:
            return chosen[0]
        if len(chosen) > 1:
            names = sorted(label(o) for o in chosen)
            raise _fail(path, f"several {parent} series {names}; choose one with series=")
    if len(found) == 1:
        return found[0]
    raise _fail(
        path,
        f"several RoiResponseSeries {sorted(label(o) for o in found)}; choose one with series=",
    )


def _read_roi(nwbfile: Any, name: str | None, path: Path):
    series = _roi_series(nwbfile, name, path)
    data = np.asarray(series.data[:], dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise _fail(path, f"RoiResponseSeries {series.name} has shape {data.shape}")
    times = _series_times(series, data.shape[0])
    if times.shape[0] != data.shape[0]:
        raise _fail(
            path,
            f"RoiResponseSeries {series.name} has {data.shape[0]} frames but "
            f"{times.shape[0]} timestamps",
        )
    rois = series.rois
    index = np.asarray(rois.data[:], dtype=int)
    ids = np.asarray(rois.table.id[:])[index]
    if ids.shape[0] != data.shape[1]:
        raise _fail(path, f"{data.shape[1]} ROI traces but {ids.shape[0]} ROIs in the region")
    unit = str(series.unit) if series.unit not in (None, "", "n.a.", "no unit") else "a.u."
    if type(series.parent).__name__ == "DfOverF" and unit == "a.u.":
        unit = "dF/F"
    return data, times, ids, unit


def _interval_table(nwbfile: Any, name: str, path: Path) -> Any:
    if name == "trials":
        table = nwbfile.trials
    elif nwbfile.intervals is not None and name in nwbfile.intervals:
        table = nwbfile.intervals[name]
    else:
        from pynwb.epoch import TimeIntervals

        matches = [
            o for o in nwbfile.objects.values() if isinstance(o, TimeIntervals) and o.name == name
        ]
        table = matches[0] if len(matches) == 1 else None
    if table is None:
        known = ["trials"] if nwbfile.trials is not None else []
        known += list(nwbfile.intervals) if nwbfile.intervals is not None else []
        raise _fail(path, f"no interval table {name!r} (available: {sorted(set(known))})")
    return table


def _column(table: Any, name: str, path: Path) -> np.ndarray:
    if name not in table.colnames:
        raise _fail(
            path,
            f"interval table {table.name!r} has no column {name!r} "
            f"(columns: {list(table.colnames)})",
        )
    return np.asarray(table[name].data[:])


def _intervals(table: Any, path: Path):
    start = np.asarray(table["start_time"].data[:], dtype=float)
    stop = np.asarray(table["stop_time"].data[:], dtype=float)
    order = np.argsort(start, kind="stable")
    if np.any(stop < start):
        raise _fail(path, f"interval table {table.name!r} has an interval ending before it starts")
    s, e = start[order], stop[order]
    if np.any(s[1:] < e[:-1]):
        raise _fail(path, f"interval table {table.name!r} has overlapping intervals")
    return order, s, e


def _frame_rows(times: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Row (in sorted order) of the interval holding each time, -1 outside all intervals."""
    pos = np.searchsorted(starts, times, side="right") - 1
    inside = (pos >= 0) & (times < stops[np.clip(pos, 0, None)])
    return np.where(inside, pos, -1)


def _sample_series(nwbfile: Any, name: str, times: np.ndarray, path: Path) -> np.ndarray:
    """Value of a 1-D TimeSeries at each time (last sample at or before it); NaN outside."""
    from pynwb import TimeSeries

    matches = [o for o in nwbfile.objects.values() if isinstance(o, TimeSeries) and o.name == name]
    if len(matches) != 1:
        what = "no" if not matches else "several"
        raise _fail(path, f"{what} TimeSeries named {name!r}")
    ts = matches[0]
    data = np.asarray(ts.data[:], dtype=float)
    if data.ndim == 2 and data.shape[1] == 1:
        data = data[:, 0]
    if data.ndim != 1:
        raise _fail(
            path, f"TimeSeries {name!r} has shape {data.shape}; expected one value per sample"
        )
    t = _series_times(ts, data.shape[0])
    pos = np.searchsorted(t, times, side="right") - 1
    step = np.median(np.diff(t)) if t.size > 1 else 0.0
    ok = (pos >= 0) & (times <= t[-1] + step)
    return np.where(ok, data[np.clip(pos, 0, None)], np.nan)


def _bin_units(nwbfile: Any, t0: float, t1: float, bin_size: float, path: Path):
    units = nwbfile.units
    if units is None or len(units) == 0:
        raise _fail(path, "no Units table (sorted units) in the file")
    if "spike_times" not in units.colnames:
        raise _fail(path, "the Units table has no spike_times column")
    n_bins = int(np.floor((t1 - t0) / bin_size))
    if n_bins < 1:
        raise _fail(path, f"recording span {t1 - t0:.3g} s is shorter than one bin ({bin_size} s)")
    edges = t0 + bin_size * np.arange(n_bins + 1)
    rates = np.empty((n_bins, len(units)))
    for i in range(len(units)):
        spikes = np.asarray(units.get_unit_spike_times(i), dtype=float)
        rates[:, i] = np.histogram(spikes, bins=edges)[0] / bin_size
    return rates, 0.5 * (edges[:-1] + edges[1:]), np.asarray(units.id[:])


def read_nwb(
    path: str | os.PathLike,
    *,
    signal: str = "auto",
    series: str | None = None,
    intervals: str | None = "trials",
    label_column: str | None = "stimulus",
    trial_column: str | None = None,
    label_series: str | None = None,
    include_series: str | None = None,
    include_threshold: float | None = None,
    bin_size: float = 0.05,
    time: Any = None,
) -> SessionTimeseries:
    """Read one NWB session as per-frame activity, labels, mask and trial ids.

    Parameters
    ----------
    path : path
        The ``.nwb`` file (HDF5).
    signal : {"auto", "roi", "units"}
        ``"roi"``: a RoiResponseSeries; ``"units"``: the Units table's spike times
        binned at ``bin_size``; ``"auto"``: ROIs when the file has any, else units.
    series : str, optional
        Name (or ``"Parent/name"``) of the RoiResponseSeries; default: the one in
        ``DfOverF``, else the one in ``Fluorescence``, else the only one.
    intervals : str or None
        Interval table giving the labels and trials: ``"trials"`` or a name in
        ``nwbfile.intervals``. ``None``: no table (then ``label_series`` is needed).
    label_column : str or None
        Column of the interval table holding the stimulus label (used unless
        ``label_series`` is given).
    trial_column : str, optional
        Column holding the trial (repeat) id; default: the interval's row number, so
        every interval is one trial.
    label_series : str, optional
        Name of a TimeSeries giving a continuous label (e.g. ``"position"``), sampled
        at each frame; with an interval table, frames outside all intervals are dropped.
    include_series : str, optional
        Name of a TimeSeries (e.g. running speed) to make the include mask from.
    include_threshold : float, optional
        Frames with ``include_series > include_threshold`` are included (required with
        ``include_series``).
    bin_size : float
        Bin width (s) for spike counts (``signal="units"``); rates are counts / bin_size.
    time : float or datetime-like, optional
        Session time; default: the file's ``session_start_time``.

    Returns
    -------
    SessionTimeseries
        ``activity (frames, cells)``, ``labels (frames,)`` (NaN for unlabelled frames
        when labels are numeric, ``""`` when they are text), ``trials``, ``include``,
        ``unit_ids`` (ROI ids or unit ids), ``frame_times`` (s).

    Raises
    ------
    ValueError
        When the file is not an NWB/HDF5 file, or lacks the requested series, table or
        columns; the message names the file.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file")
    if not h5py.is_hdf5(path):
        raise _fail(path, "not an HDF5 file (wrong file type?)")
    if signal not in ("auto", "roi", "units"):
        raise ValueError(f"signal must be 'auto', 'roi' or 'units', got {signal!r}")
    if include_series is not None and include_threshold is None:
        raise ValueError("include_series needs include_threshold")
    if intervals is None and label_series is None:
        raise ValueError("give an interval table (intervals=) or a label_series")
    from pynwb import NWBHDF5IO

    io = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # namespace/cache notices of pynwb and hdmf
        try:
            io = NWBHDF5IO(str(path), "r")
            nwbfile = io.read()
        except Exception as err:
            if io is not None:
                io.close()
            raise _fail(path, f"cannot be read as NWB ({type(err).__name__}: {err})") from None
    try:
        return _read_session(
            nwbfile,
            path,
            signal,
            series,
            intervals,
            label_column,
            trial_column,
            label_series,
            include_series,
            include_threshold,
            bin_size,
            time,
        )
    finally:
        io.close()


def _read_session(
    nwbfile,
    path,
    signal,
    series,
    intervals,
    label_column,
    trial_column,
    label_series,
    include_series,
    include_threshold,
    bin_size,
    time,
) -> SessionTimeseries:
    from pynwb.ophys import RoiResponseSeries

    if signal == "auto":
        has_roi = any(isinstance(o, RoiResponseSeries) for o in nwbfile.objects.values())
        signal = "roi" if has_roi else "units"
    table = _interval_table(nwbfile, intervals, path) if intervals is not None else None
    if table is not None and len(table) == 0:
        raise _fail(path, f"interval table {intervals!r} is empty")
    order, starts, stops = _intervals(table, path) if table is not None else (None, None, None)

    if signal == "roi":
        data, frame_times, ids, unit = _read_roi(nwbfile, series, path)
    else:
        if bin_size <= 0:
            raise ValueError(f"bin_size must be > 0 (got {bin_size})")
        if table is not None:
            t0, t1 = float(starts[0]), float(stops.max())
        else:
            all_spikes = (
                np.concatenate(
                    [
                        np.asarray(nwbfile.units.get_unit_spike_times(i))
                        for i in range(len(nwbfile.units))
                    ]
                )
                if nwbfile.units is not None and len(nwbfile.units)
                else np.empty(0)
            )
            if all_spikes.size == 0:
                raise _fail(path, "no spikes in the Units table")
            t0, t1 = float(all_spikes.min()), float(all_spikes.max()) + bin_size
        data, frame_times, ids = _bin_units(nwbfile, t0, t1, bin_size, path)
        unit = "spikes/s"

    trials = None
    if table is not None:
        rows = _frame_rows(frame_times, starts, stops)
        inside = rows >= 0
        if trial_column is not None:
            trial_values = _column(table, trial_column, path)[order].astype(float)
        else:
            trial_values = np.arange(len(order), dtype=float)
        trials = np.where(inside, trial_values[np.clip(rows, 0, None)], np.nan)
    if label_series is not None:
        labels = _sample_series(nwbfile, label_series, frame_times, path)
        if table is not None:
            labels = np.where(inside, labels, np.nan)
    else:
        if label_column is None:
            raise ValueError("give label_column or label_series")
        values = _column(table, label_column, path)[order]
        if values.dtype.kind in "iufb":
            labels = np.where(inside, values.astype(float)[np.clip(rows, 0, None)], np.nan)
        else:
            text = values.astype(str)
            labels = np.where(inside, text[np.clip(rows, 0, None)], "")
    include = None
    if include_series is not None:
        gate = _sample_series(nwbfile, include_series, frame_times, path)
        include = np.nan_to_num(gate, nan=-np.inf) > include_threshold
    session_time = time if time is not None else nwbfile.session_start_time
    return SessionTimeseries(
        activity=data,
        labels=labels,
        time=session_time,
        include=include,
        trials=trials,
        unit_ids=ids,
        frame_times=frame_times,
        source=str(path),
        units=unit,
    )
