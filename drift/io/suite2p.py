"""Read one Suite2p output folder into a :class:`~drift.io.recordings.SessionTimeseries`.

Suite2p writes, per imaging plane, ``F.npy`` (ROIs x frames, raw fluorescence),
``Fneu.npy`` (neuropil), ``spks.npy`` (deconvolved activity), ``iscell.npy``
(ROIs x 2: cell flag, cell probability) and ``ops.npy`` (settings, incl. the frame rate
``fs``). The reader accepts a plane folder (holding ``F.npy``), a folder of ``plane*``
folders (the planes' cells are concatenated), or a folder holding ``suite2p/``.

Suite2p knows nothing about stimuli, so the per-frame labels (and optionally an include
mask and trial ids) and the session time are given alongside.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from drift.io.recordings import SessionTimeseries

__all__ = ["read_suite2p", "suite2p_planes"]

_SIGNALS = ("spks", "F", "Fc", "dff")


def suite2p_planes(folder: str | os.PathLike) -> list[Path]:
    """Plane folders of a Suite2p output, in plane order.

    Raises
    ------
    ValueError
        When the folder holds no ``F.npy``, no ``plane*`` folders and no ``suite2p/``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"Suite2p folder {root}: not a folder")
    if (root / "F.npy").is_file():
        return [root]
    planes = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"plane\d+", p.name)]
    if planes:
        return sorted(planes, key=lambda p: int(p.name[5:]))
    if (root / "suite2p").is_dir():
        return suite2p_planes(root / "suite2p")
    raise ValueError(f"Suite2p folder {root}: no F.npy, plane* folders or suite2p/ inside")


def _load(path: Path, *, required: bool = True) -> np.ndarray | None:
    if not path.is_file():
        if required:
            raise ValueError(f"Suite2p file {path}: missing")
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"Suite2p file {path}: not a numeric .npy array ({err})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iufb":
        raise ValueError(f"Suite2p file {path}: not a numeric .npy array")
    return arr


def _frame_rate(plane: Path) -> float | None:
    ops_path = plane / "ops.npy"
    if not ops_path.is_file():
        return None
    try:
        ops = np.load(ops_path, allow_pickle=True).item()  # Suite2p stores a pickled dict
        return float(ops["fs"])
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return None


def _plane_signal(
    plane: Path,
    signal: str,
    neuropil_coefficient: float,
    baseline_percentile: float,
) -> np.ndarray:
    """(ROIs, frames) signal of one plane."""
    if signal == "spks":
        out = _load(plane / "spks.npy").astype(float)
    else:
        out = _load(plane / "F.npy").astype(float)
        if signal in ("Fc", "dff"):
            neu = _load(plane / "Fneu.npy").astype(float)
            if neu.shape != out.shape:
                raise ValueError(
                    f"Suite2p folder {plane}: Fneu.npy has shape {neu.shape}, F.npy {out.shape}"
                )
            out = out - neuropil_coefficient * neu
        if signal == "dff":
            f0 = np.percentile(out, baseline_percentile, axis=1, keepdims=True)
            scale = np.where(np.abs(f0) > 0, np.abs(f0), np.nan)
            out = (out - f0) / scale
    if out.ndim != 2:
        raise ValueError(f"Suite2p folder {plane}: {signal} has shape {out.shape}, expected 2-D")
    return out


def _cell_mask(plane: Path, n_rois: int, threshold: float | None) -> np.ndarray:
    iscell = _load(plane / "iscell.npy", required=False)
    if iscell is None:
        return np.ones(n_rois, dtype=bool)
    iscell = iscell.reshape(iscell.shape[0], -1)
    if iscell.shape[0] != n_rois:
        raise ValueError(
            f"Suite2p file {plane / 'iscell.npy'}: {iscell.shape[0]} rows for {n_rois} ROIs"
        )
    if threshold is None:
        return iscell[:, 0] > 0.5
    if iscell.shape[1] < 2:
        raise ValueError(f"Suite2p file {plane / 'iscell.npy'}: no probability column")
    return iscell[:, 1] >= threshold


def _per_frame(value: Any, n_frames: int, name: str, folder: Path) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if path.suffix.lower() != ".npy":
            raise ValueError(f"{name} file {path}: expected a .npy array")
        if not path.is_file():
            raise ValueError(f"{name} file {path}: missing")
        try:
            value = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise ValueError(f"{name} file {path}: not a .npy array ({err})") from None
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] != n_frames:
        raise ValueError(
            f"Suite2p folder {folder}: {name} has shape {arr.shape} but the recording has "
            f"{n_frames} frames"
        )
    return arr


def read_suite2p(
    folder: str | os.PathLike,
    labels: Any,
    time: Any,
    *,
    include: Any = None,
    trials: Any = None,
    signal: str = "spks",
    iscell_threshold: float | None = None,
    neuropil_coefficient: float = 0.7,
    baseline_percentile: float = 8.0,
) -> SessionTimeseries:
    """Read a Suite2p session.

    Parameters
    ----------
    folder : path
        Plane folder, folder of ``plane*`` folders, or a folder holding ``suite2p/``.
    labels : array_like or path to .npy, shape (frames,)
        Stimulus label of each frame (NaN: no stimulus).
    time : float or datetime-like
        Session time (days, or a date).
    include : array_like of bool or path to .npy, shape (frames,), optional
        Frames to use.
    trials : array_like or path to .npy, shape (frames,), optional
        Trial id of each frame.
    signal : {"spks", "F", "Fc", "dff"}
        Deconvolved activity; raw fluorescence; neuropil-corrected
        ``F - neuropil_coefficient * Fneu``; or its ``(Fc - F0) / |F0|`` with ``F0`` the
        ``baseline_percentile`` percentile of each ROI over the session.
    iscell_threshold : float, optional
        Keep ROIs whose cell probability (``iscell[:, 1]``) is at least this; default:
        keep ROIs flagged as cells (``iscell[:, 0] == 1``); all ROIs without iscell.npy.
    neuropil_coefficient, baseline_percentile : float
        See ``signal``.

    Returns
    -------
    SessionTimeseries
        ``activity (frames, cells)`` of the kept ROIs, ``unit_ids (cells,)`` their ROI
        index counted over the planes in order (plane 0 first), ``frame_times`` in
        seconds when ``ops.npy`` gives the frame rate (per plane-cycle).

    Raises
    ------
    ValueError
        When files are missing or not numeric arrays, the planes' frame counts differ, or
        a per-frame array has the wrong length; the message names the folder or file.
    """
    if signal not in _SIGNALS:
        raise ValueError(f"signal must be one of {_SIGNALS}, got {signal!r}")
    root = Path(folder)
    planes = suite2p_planes(root)
    blocks, ids = [], []
    offset = 0
    n_frames = None
    for plane in planes:
        sig = _plane_signal(plane, signal, neuropil_coefficient, baseline_percentile)
        if n_frames is not None and sig.shape[1] != n_frames:
            raise ValueError(
                f"Suite2p folder {root}: {plane.name} has {sig.shape[1]} frames, "
                f"{planes[0].name} has {n_frames}"
            )
        n_frames = sig.shape[1]
        keep = _cell_mask(plane, sig.shape[0], iscell_threshold)
        blocks.append(sig[keep])
        ids.append(offset + np.flatnonzero(keep))
        offset += sig.shape[0]
    activity = np.concatenate(blocks, axis=0).T
    fs = _frame_rate(planes[0])
    unit = {
        "spks": "a.u. (deconvolved)",
        "F": "a.u. (fluorescence)",
        "Fc": "a.u. (fluorescence)",
        "dff": "dF/F",
    }[signal]
    return SessionTimeseries(
        activity=activity,
        labels=_per_frame(labels, n_frames, "labels", root),
        time=time,
        include=_per_frame(include, n_frames, "include", root),
        trials=_per_frame(trials, n_frames, "trials", root),
        unit_ids=np.concatenate(ids),
        frame_times=None if fs is None else np.arange(n_frames) / fs,
        source=str(root),
        units=unit,
    )
