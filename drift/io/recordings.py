"""Recorded responses into the ndk-drift format (``kind = "recording"``).

Two entry points build the dataset of docs/data_format.md:

* :func:`from_arrays` takes responses already averaged per stimulus, one
  ``(units, stimuli[, trials])`` array per session.
* :func:`from_timeseries` takes per-session activity time series ``(frames, cells)``,
  a per-frame stimulus label, an optional per-frame include mask and trial id, and a
  cross-session registration, and averages each cell's activity over the included
  frames of each stimulus (or stimulus bin): the occupancy-normalised mean response.

:func:`from_sessions` feeds :class:`SessionTimeseries` objects (what the NWB and Suite2p
readers return) to :func:`from_timeseries`.

The result has ``activity`` over ``(time, unit, stimulus[, trial])`` with time in days
since the first session, NaN wherever a unit was not found in a session or a stimulus
had no included frames.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from drift.io._common import RecordingWarning, describe_session, format_attrs, session_days
from drift.io.cellreg import match_unit_ids, validate_registration

__all__ = ["SessionTimeseries", "from_arrays", "from_timeseries", "from_sessions"]


@dataclass
class SessionTimeseries:
    """One recording session as time series, ready for :func:`from_timeseries`.

    Attributes
    ----------
    activity : ndarray, shape (frames, cells)
        Activity of each cell in each frame (e.g. dF/F, deconvolved events, spikes/s).
    labels : ndarray, shape (frames,)
        Stimulus label of each frame (discrete id, or a continuous value to bin); NaN
        for frames without a stimulus.
    time : float or datetime-like
        Session time: days, or a date/datetime (converted to days since the first session).
    include : ndarray of bool, shape (frames,), optional
        Frames to use (e.g. running speed above a threshold); all when ``None``.
    trials : ndarray, shape (frames,), optional
        Trial id of each frame (negative or NaN: in no trial).
    unit_ids : ndarray, shape (cells,), optional
        Ids of the cells (ROI ids, sorted-unit ids), for matching across sessions.
    frame_times : ndarray, shape (frames,), optional
        Frame times in seconds from the session start.
    source : str
        File or folder the session was read from.
    units : str
        Units of ``activity``.
    """

    activity: np.ndarray
    labels: np.ndarray
    time: Any
    include: np.ndarray | None = None
    trials: np.ndarray | None = None
    unit_ids: np.ndarray | None = None
    frame_times: np.ndarray | None = None
    source: str = ""
    units: str = "a.u."


# --------------------------------------------------------------------------- assembly


def _build_dataset(
    activity: np.ndarray,
    days: np.ndarray,
    origin: str | None,
    unit_ids: np.ndarray,
    *,
    stimulus_values: np.ndarray | None,
    targets: Any,
    split: Any,
    units: str,
    long_name: str,
    sources: Sequence[str] | None,
    extra_vars: dict[str, xr.DataArray] | None = None,
    extra_attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    n_stim = activity.shape[2]
    dims = ["time", "unit", "stimulus"] + (["trial"] if activity.ndim == 4 else [])
    coords: dict[str, Any] = {
        "time": ("time", np.asarray(days, dtype=float), {"units": "days"}),
        "unit": ("unit", np.arange(activity.shape[1])),
        "unit_id": ("unit", np.asarray(unit_ids)),
        "stimulus": ("stimulus", np.arange(n_stim)),
        "split": ("stimulus", _per_stimulus(split, n_stim, "split", str)),
        "target": ("stimulus", _per_stimulus(targets, n_stim, "targets", float)),
    }
    if stimulus_values is not None:
        coords["stimulus_value"] = ("stimulus", np.asarray(stimulus_values))
    if activity.ndim == 4:
        coords["trial"] = ("trial", np.arange(activity.shape[3]))
    data_vars: dict[str, Any] = {
        "activity": (dims, activity, {"units": units, "long_name": long_name}),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=format_attrs(origin, sources))
    for name, var in (extra_vars or {}).items():
        ds[name] = var
    ds.attrs.update(extra_attrs or {})
    return ds


def _per_stimulus(value: Any, n_stim: int, name: str, kind: type) -> np.ndarray:
    if value is None:
        return np.full(
            n_stim, "all" if kind is str else np.nan, dtype=object if kind is str else float
        )
    if isinstance(value, str) or np.ndim(value) == 0:
        return np.full(n_stim, value, dtype=object if kind is str else float)
    arr = np.asarray(value, dtype=object if kind is str else float)
    if arr.shape != (n_stim,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({n_stim},) (one per stimulus)")
    return arr


def _resolve_registration(
    registration: Any, n_cells: list[int], sources: Sequence[str] | None
) -> np.ndarray:
    if registration is None:
        if len(set(n_cells)) != 1:
            detail = ", ".join(
                f"{describe_session(k, sources)}: {n}" for k, n in enumerate(n_cells)
            )
            raise ValueError(
                f"sessions have different numbers of cells and no registration was given ({detail})"
            )
        return np.tile(np.arange(n_cells[0])[:, None], (1, len(n_cells)))
    reg = validate_registration(registration, n_cells, sources=sources)
    return reg


# --------------------------------------------------------------------------- from_arrays


def _split_unit_ids(unit_ids: Any, n_sessions: int) -> tuple[list | None, np.ndarray | None]:
    """(per-session ids, shared ids); exactly one is not None when ids are given."""
    if unit_ids is None:
        return None, None
    if isinstance(unit_ids, np.ndarray) and unit_ids.ndim == 1 and unit_ids.dtype != object:
        return None, unit_ids
    items = list(unit_ids)
    if len(items) == n_sessions and all(np.ndim(i) == 1 for i in items):
        return [np.asarray(i) for i in items], None
    return None, np.asarray(items)


def from_arrays(
    responses: Sequence[Any] | np.ndarray,
    session_times: Sequence[Any] | np.ndarray,
    unit_ids: Any = None,
    *,
    stimulus_values: Any = None,
    targets: Any = None,
    split: Any = "all",
    units: str = "a.u.",
    long_name: str = "mean response",
    sources: Sequence[str] | None = None,
) -> xr.Dataset:
    """Stimulus-averaged responses per session into the project format.

    Parameters
    ----------
    responses : sequence of array_like or ndarray
        One array per session of shape ``(units_k, stimuli)`` or
        ``(units_k, stimuli, trials_k)`` (NaN allowed), or one array
        ``(sessions, units, stimuli[, trials])``. Trial counts may differ between
        sessions (shorter ones are padded with NaN).
    session_times : sequence, shape (sessions,)
        Days, or datetime-likes; stored as days since the first session.
    unit_ids : array_like, optional
        Either one array ``(units,)`` shared by all sessions (same units, same order),
        or one array per session ``(units_k,)``: units are then matched across
        sessions by id, and a unit missing from a session is NaN there.
    stimulus_values : array_like, shape (stimuli,), optional
        What each stimulus is (orientation, frame number, ...), stored as the
        ``stimulus_value`` coordinate.
    targets : array_like, shape (stimuli,), optional
        ``target`` coordinate (NaN when not given).
    split : str or array_like of str, shape (stimuli,)
        ``split`` coordinate, ``"all"`` by default.
    units, long_name : str
        Attributes of ``activity``.
    sources : sequence of str, optional
        Names of the sessions' files, for messages and the ``sources`` attribute.

    Returns
    -------
    xarray.Dataset
        ``activity`` over ``(time, unit, stimulus[, trial])``.

    Raises
    ------
    ValueError
        Inconsistent shapes, bad unit ids, or session times that are not strictly
        increasing.
    """
    if isinstance(responses, np.ndarray) and responses.dtype != object:
        if responses.ndim not in (3, 4):
            raise ValueError(
                f"responses has shape {responses.shape}; expected (sessions, units, stimuli"
                "[, trials]) or a list of per-session arrays"
            )
        sessions = [np.asarray(r, dtype=float) for r in responses]
    else:
        sessions = [np.asarray(r, dtype=float) for r in responses]
    n_sessions = len(sessions)
    days, origin = session_days(session_times, sources)
    if len(days) != n_sessions:
        raise ValueError(f"{n_sessions} response arrays but {len(days)} session times")
    ndims = {r.ndim for r in sessions}
    if not ndims <= {2, 3} or len(ndims) != 1:
        shapes = ", ".join(
            f"{describe_session(k, sources)}: {r.shape}" for k, r in enumerate(sessions)
        )
        raise ValueError(
            "each session's responses must be (units, stimuli) or (units, stimuli, trials), "
            f"all of the same rank; got {shapes}"
        )
    n_stim = sessions[0].shape[1]
    for k, r in enumerate(sessions):
        if r.shape[1] != n_stim:
            raise ValueError(
                f"{describe_session(k, sources)}: {r.shape[1]} stimuli, but session 0 has {n_stim}"
            )
    n_cells = [r.shape[0] for r in sessions]
    per_session, shared = _split_unit_ids(unit_ids, n_sessions)
    if per_session is not None:
        for k, (ids, n) in enumerate(zip(per_session, n_cells, strict=True)):
            if ids.shape != (n,):
                raise ValueError(
                    f"{describe_session(k, sources)}: {ids.shape[0]} unit ids for {n} units"
                )
        reg, ids = match_unit_ids(per_session, sources)
    else:
        reg = _resolve_registration(None, n_cells, sources)
        ids = np.arange(reg.shape[0]) if shared is None else shared
        if ids.shape != (reg.shape[0],):
            raise ValueError(f"{ids.shape[0]} unit ids for {reg.shape[0]} units")
    trials = max(r.shape[2] for r in sessions) if sessions[0].ndim == 3 else None
    shape = (n_sessions, reg.shape[0], n_stim) + ((trials,) if trials else ())
    out = np.full(shape, np.nan)
    for k, r in enumerate(sessions):
        rows = np.flatnonzero(reg[:, k] >= 0)
        if trials:
            out[k, rows, :, : r.shape[2]] = r[reg[rows, k]]
        else:
            out[k, rows] = r[reg[rows, k]]
    return _build_dataset(
        out,
        days,
        origin,
        ids,
        stimulus_values=stimulus_values,
        targets=targets,
        split=split,
        units=units,
        long_name=long_name,
        sources=sources,
    )


# --------------------------------------------------------------------------- labels


def _check_lengths(
    activity: list[np.ndarray], other: Sequence[Any] | None, name: str, sources
) -> list[np.ndarray | None]:
    if other is None:
        return [None] * len(activity)
    other = list(other)
    if len(other) != len(activity):
        raise ValueError(f"{len(other)} {name} arrays for {len(activity)} sessions")
    out: list[np.ndarray | None] = []
    for k, (act, arr) in enumerate(zip(activity, other, strict=True)):
        if arr is None:
            out.append(None)
            continue
        arr = np.asarray(arr)
        if arr.ndim != 1 or arr.shape[0] != act.shape[0]:
            raise ValueError(
                f"{describe_session(k, sources)}: {name} has shape {arr.shape} but the activity "
                f"has {act.shape[0]} frames; expected ({act.shape[0]},)"
            )
        out.append(arr)
    return out


def _numeric(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "iufb"


def _discrete_index(labels: list[np.ndarray], stimuli: Any) -> tuple[list[np.ndarray], np.ndarray]:
    numeric = all(_numeric(lab) for lab in labels)
    if stimuli is not None:
        values = np.asarray(stimuli)
        if values.ndim != 1 or values.size == 0:
            raise ValueError("stimuli must be a non-empty 1-D list of label values")
        if len(np.unique(values)) != values.size:
            raise ValueError("stimuli contains repeated values")
        numeric = numeric and _numeric(values)
    conv = [lab.astype(float) if numeric else lab.astype(str) for lab in labels]
    if stimuli is None:
        pool = np.concatenate([lab[~np.isnan(lab)] if numeric else lab[lab != ""] for lab in conv])
        values = np.unique(pool)
        if values.size == 0:
            raise ValueError("no frame carries a stimulus label")
        order = values
        lookup = values
    else:
        lookup_src = values.astype(float) if numeric else values.astype(str)
        order = np.argsort(lookup_src, kind="stable")
        lookup = lookup_src[order]
    index = []
    for lab in conv:
        pos = np.searchsorted(lookup, lab)
        pos_c = np.minimum(pos, lookup.size - 1)
        hit = (pos < lookup.size) & (lookup[pos_c] == lab)
        mapped = order[pos_c] if stimuli is not None else pos_c
        index.append(np.where(hit, mapped, -1).astype(np.int64))
    return index, values


def _binned_index(
    labels: list[np.ndarray], bins: Any, label_range: tuple[float, float] | None, sources
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    conv = []
    for k, lab in enumerate(labels):
        if not _numeric(lab):
            raise ValueError(
                f"{describe_session(k, sources)}: labels of dtype {lab.dtype} cannot be binned"
            )
        conv.append(lab.astype(float))
    if np.ndim(bins) == 0:
        n_bins = int(bins)
        if n_bins < 1:
            raise ValueError(f"bins must be >= 1 (got {bins})")
        if label_range is None:
            finite = np.concatenate([lab[np.isfinite(lab)] for lab in conv])
            if finite.size == 0:
                raise ValueError("no frame carries a finite label to bin")
            label_range = (float(finite.min()), float(finite.max()))
        lo, hi = map(float, label_range)
        if not hi > lo:
            raise ValueError(f"label_range {label_range} is empty")
        edges = np.linspace(lo, hi, n_bins + 1)
    else:
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bin edges must be a strictly increasing 1-D array of >= 2 values")
    n_bins = edges.size - 1
    index = []
    for lab in conv:
        pos = np.searchsorted(edges, lab, side="right") - 1
        pos = np.where(lab == edges[-1], n_bins - 1, pos)
        ok = np.isfinite(lab) & (pos >= 0) & (pos < n_bins)
        index.append(np.where(ok, pos, -1).astype(np.int64))
    centres = 0.5 * (edges[:-1] + edges[1:])
    return index, centres, edges


def _repeat_index(stim: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Rank of each frame's trial among the trials of its stimulus; -1 outside trials."""
    tr = trials.astype(float)
    valid = (stim >= 0) & np.isfinite(tr) & (tr >= 0)
    rep = np.full(stim.shape, -1, dtype=np.int64)
    if not np.any(valid):
        return rep
    pairs = np.stack([stim[valid].astype(float), tr[valid]])
    uniq, inverse = np.unique(pairs, axis=1, return_inverse=True)
    first = np.searchsorted(uniq[0], uniq[0], side="left")
    rank = np.arange(uniq.shape[1]) - first
    rep[valid] = rank[inverse.ravel()]
    return rep


def _group_means(
    activity: np.ndarray, group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of activity rows per group (-1 = dropped). Returns (means (G, cells), counts (G,))."""
    keep = group >= 0
    g = group[keep]
    counts = np.bincount(g, minlength=n_groups)
    means = np.full((n_groups, activity.shape[1]), np.nan)
    if g.size:
        order = np.argsort(g, kind="stable")
        rows = activity[keep][order]
        gs = g[order]
        starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
        sums = np.add.reduceat(rows, starts, axis=0)
        present = gs[starts]
        means[present] = sums / counts[present][:, None]
    return means, counts


# --------------------------------------------------------------------------- from_timeseries


def from_timeseries(
    activity: Sequence[Any],
    labels: Sequence[Any],
    session_times: Sequence[Any] | np.ndarray,
    registration: Any = None,
    *,
    include: Sequence[Any] | None = None,
    trials: Sequence[Any] | None = None,
    bins: int | Sequence[float] | None = None,
    label_range: tuple[float, float] | None = None,
    stimuli: Sequence[Any] | None = None,
    unit_ids: Any = None,
    targets: Any = None,
    split: Any = "all",
    units: str = "a.u.",
    long_name: str = "mean response",
    sources: Sequence[str] | None = None,
) -> xr.Dataset:
    """Stimulus-conditioned mean responses from per-session activity time series.

    For every session, unit and stimulus (bin) the response is the mean of the unit's
    activity over the included frames carrying that stimulus, i.e. the summed activity
    divided by the occupancy (number of such frames). With ``trials`` the mean is taken
    per repeat and a ``trial`` dimension is kept: repeat ``r`` of stimulus ``s`` is the
    ``r``-th distinct trial id (in increasing order) among the frames labelled ``s``.

    Parameters
    ----------
    activity : sequence of array_like, each shape (frames_k, cells_k)
        Activity per session (e.g. dF/F, deconvolved events, spikes/s). Frame counts and
        cell counts may differ between sessions.
    labels : sequence of array_like, each shape (frames_k,)
        Stimulus label of each frame. Without ``bins`` each distinct value is one
        stimulus (numbers or text; NaN or ``""`` = no stimulus). With ``bins`` the labels are a
        continuous variable (e.g. track position) cut into bins.
    session_times : sequence, shape (sessions,)
        Days, or datetime-likes; stored as days since the first session. Must be
        strictly increasing.
    registration : array_like of int, shape (units, sessions), optional
        0-based index of each unit among each session's cells, ``-1`` where the unit was
        not found (see :func:`drift.io.cellreg.read_cellreg`). When omitted every session
        must have the same cells in the same order.
    include : sequence of array_like of bool, each shape (frames_k,), optional
        Frames to use (e.g. running speed above a threshold); ``None`` entries use all.
    trials : sequence of array_like, each shape (frames_k,), optional
        Trial id of each frame (NaN or negative: in no trial, dropped).
    bins : int or array_like, optional
        Number of equal bins over ``label_range`` (default: the labels' finite range), or
        the bin edges ``(bins + 1,)``. Labels outside the edges are dropped; the last
        edge is inclusive.
    label_range : (float, float), optional
        Range for an integer ``bins``.
    stimuli : sequence, optional
        Label values to keep, in the order of the ``stimulus`` dimension (discrete
        labels only); default: every label value seen, sorted.
    unit_ids : array_like, shape (units,), optional
        Ids of the registered units (``unit_id`` coordinate); default ``0..units-1``.
    targets, split : optional
        ``target`` and ``split`` coordinates, one per stimulus.
    units, long_name : str
        Attributes of ``activity``.
    sources : sequence of str, optional
        Names of the sessions' files, for messages and the ``sources`` attribute.

    Returns
    -------
    xarray.Dataset
        ``activity`` over ``(time, unit, stimulus[, trial])``; ``occupancy`` (frames
        averaged) over ``(time, stimulus[, trial])``; ``cell_index`` (0-based index of
        each unit in each session, -1 where absent) over ``(time, unit)``; coordinate
        ``stimulus_value`` (label value or bin centre) and, with bins, the attribute
        ``stimulus_bin_edges``.

    Warns
    -----
    RecordingWarning
        When a stimulus has no included frame in a session (its responses are NaN).

    Raises
    ------
    ValueError
        When a label, mask or trial array's length differs from its session's frame
        count, the registration does not fit the sessions, or the session times are not
        strictly increasing. Messages name the session and its source.
    """
    acts = []
    for k, a in enumerate(activity):
        arr = np.asarray(a, dtype=float)
        if arr.ndim != 2:
            raise ValueError(
                f"{describe_session(k, sources)}: activity has shape {arr.shape}; "
                "expected (frames, cells)"
            )
        acts.append(arr)
    n_sessions = len(acts)
    if n_sessions == 0:
        raise ValueError("no sessions were given")
    if sources is not None and len(sources) != n_sessions:
        raise ValueError(f"{len(sources)} sources for {n_sessions} sessions")
    days, origin = session_days(session_times, sources)
    if len(days) != n_sessions:
        raise ValueError(f"{n_sessions} activity arrays but {len(days)} session times")
    labs = _check_lengths(acts, labels, "labels", sources)
    if any(lab is None for lab in labs):
        raise ValueError("every session needs a labels array")
    masks = _check_lengths(acts, include, "include mask", sources)
    tr = _check_lengths(acts, trials, "trials", sources)
    for k, m in enumerate(masks):
        if m is not None and m.dtype.kind != "b":
            if m.dtype.kind not in "iu" or not np.all((m == 0) | (m == 1)):
                raise ValueError(
                    f"{describe_session(k, sources)}: include mask must be boolean (dtype "
                    f"{m.dtype})"
                )
            masks[k] = m.astype(bool)
    reg = _resolve_registration(registration, [a.shape[1] for a in acts], sources)

    edges = None
    if bins is None:
        if label_range is not None:
            raise ValueError("label_range needs bins")
        stim_idx, values = _discrete_index(labs, stimuli)
    else:
        if stimuli is not None:
            raise ValueError("give either bins (continuous labels) or stimuli (discrete)")
        stim_idx, values, edges = _binned_index(labs, bins, label_range, sources)
    n_stim = len(values)

    with_trials = any(t is not None for t in tr)
    reps = []
    for k in range(n_sessions):
        if not with_trials:
            reps.append(None)
        elif tr[k] is None:
            raise ValueError(
                f"{describe_session(k, sources)}: trials missing (other sessions have them)"
            )
        else:
            if not _numeric(tr[k]):
                raise ValueError(f"{describe_session(k, sources)}: trial ids must be numbers")
            reps.append(_repeat_index(stim_idx[k], tr[k]))
    n_rep = max([int(r.max()) + 1 for r in reps if r is not None and r.size] + [1])
    n_groups = n_stim * n_rep if with_trials else n_stim

    shape = (n_sessions, reg.shape[0], n_stim) + ((n_rep,) if with_trials else ())
    out = np.full(shape, np.nan)
    occupancy = np.zeros((n_sessions, n_stim) + ((n_rep,) if with_trials else ()), dtype=np.int64)
    unvisited: list[str] = []
    for k in range(n_sessions):
        group = stim_idx[k].copy()
        if masks[k] is not None:
            group[~masks[k]] = -1
        if with_trials:
            group = np.where((group >= 0) & (reps[k] >= 0), group * n_rep + reps[k], -1)
        means, counts = _group_means(acts[k], group, n_groups)
        means = means.reshape((n_stim, n_rep, -1) if with_trials else (n_stim, -1))
        counts = counts.reshape((n_stim, n_rep) if with_trials else (n_stim,))
        occupancy[k] = counts
        rows = np.flatnonzero(reg[:, k] >= 0)
        cells = reg[rows, k]
        out[k, rows] = np.moveaxis(means[..., cells], -1, 0)
        per_stim = counts.sum(axis=1) if with_trials else counts
        empty = np.flatnonzero(per_stim == 0)
        if empty.size:
            unvisited.append(f"{describe_session(k, sources)}: stimuli {empty.tolist()}")
    if unvisited:
        warnings.warn(
            "stimuli with no included frame have NaN responses: " + "; ".join(unvisited),
            RecordingWarning,
            stacklevel=2,
        )

    ids = np.arange(reg.shape[0]) if unit_ids is None else np.asarray(unit_ids)
    if ids.shape != (reg.shape[0],):
        raise ValueError(f"{ids.shape} unit ids for {reg.shape[0]} registered units")
    occ_dims = ["time", "stimulus"] + (["trial"] if with_trials else [])
    extra_vars = {
        "occupancy": xr.DataArray(
            occupancy,
            dims=occ_dims,
            attrs={"units": "frames", "long_name": "number of included frames averaged"},
        ),
        "cell_index": xr.DataArray(
            reg.T.copy(),
            dims=["time", "unit"],
            attrs={
                "units": "1",
                "long_name": "0-based index of the unit among the session's cells (-1: absent)",
            },
        ),
    }
    extra_attrs: dict[str, Any] = {}
    if edges is not None:
        extra_attrs["stimulus_bin_edges"] = edges
    return _build_dataset(
        out,
        days,
        origin,
        ids,
        stimulus_values=values,
        targets=targets,
        split=split,
        units=units,
        long_name=long_name,
        sources=sources,
        extra_vars=extra_vars,
        extra_attrs=extra_attrs,
    )


def from_sessions(
    sessions: Sequence[SessionTimeseries],
    registration: Any = None,
    *,
    keep_trials: bool = True,
    **kwargs: Any,
) -> xr.Dataset:
    """:func:`from_timeseries` on sessions read by the NWB or Suite2p readers.

    Parameters
    ----------
    sessions : sequence of SessionTimeseries
        In recording order.
    registration : array_like of int, shape (units, sessions), or ``"unit_ids"``, optional
        0-based registration (e.g. from :func:`drift.io.cellreg.read_cellreg`);
        ``"unit_ids"`` matches cells across sessions by their ``unit_ids``; ``None``
        requires the same cells in every session.
    keep_trials : bool
        Keep a ``trial`` dimension when the sessions carry trial ids; ``False`` averages
        over all trials.
    **kwargs
        Passed to :func:`from_timeseries` (``bins``, ``stimuli``, ``label_range``, ...).
        ``units`` defaults to the sessions' units.

    Returns
    -------
    xarray.Dataset
    """
    sessions = list(sessions)
    if not sessions:
        raise ValueError("no sessions were given")
    sources = [s.source for s in sessions]
    unit_ids = kwargs.pop("unit_ids", None)
    if isinstance(registration, str):
        if registration != "unit_ids":
            raise ValueError(f"registration must be an array or 'unit_ids', got {registration!r}")
        missing = [
            describe_session(k, sources) for k, s in enumerate(sessions) if s.unit_ids is None
        ]
        if missing:
            raise ValueError(f"cannot match by unit id: no unit ids in {', '.join(missing)}")
        registration, unit_ids = match_unit_ids([s.unit_ids for s in sessions], sources)
    elif registration is None and unit_ids is None and sessions[0].unit_ids is not None:
        first = np.asarray(sessions[0].unit_ids)
        if all(
            s.unit_ids is not None and np.array_equal(np.asarray(s.unit_ids), first)
            for s in sessions
        ):
            unit_ids = first
    kwargs.setdefault("units", sessions[0].units)
    with_trials = any(s.trials is not None for s in sessions)
    return from_timeseries(
        [s.activity for s in sessions],
        [s.labels for s in sessions],
        [s.time for s in sessions],
        registration,
        include=[s.include for s in sessions],
        trials=[s.trials for s in sessions] if keep_trials and with_trials else None,
        unit_ids=unit_ids,
        sources=sources,
        **kwargs,
    )
