"""Convert a recording described by a small YAML/JSON spec into the ndk-drift format.

Spec keys (paths are relative to the spec file's folder)::

    reader: nwb                 # nwb | suite2p | timeseries | arrays
    sessions:                   # in recording order
      - path: day00.nwb         # nwb: file; suite2p: folder
        time: 2023-05-02        # days or a date; nwb default: session_start_time
      - path: day03.nwb
    registration: cellRegistered.mat   # CellReg .mat/.npy, or "unit_ids"; omit: same cells
    reader_options:             # keyword arguments of read_nwb / read_suite2p
      signal: roi
      label_column: orientation
    bins: 12                    # or bin edges; for continuous labels
    label_range: [0, 180]
    stimuli: [0, 45, 90, 135]   # discrete labels to keep, in order
    keep_trials: true
    units: dF/F
    long_name: mean response

Per-session keys by reader: ``nwb``: ``path``, ``time``; ``suite2p``: ``path``, ``time``,
``labels``, ``include``, ``trials`` (``.npy`` files); ``timeseries``: ``activity``
(``.npy``, frames x cells), ``labels``, ``include``, ``trials``, ``unit_ids``, ``time``;
``arrays``: ``responses`` (``.npy``, units x stimuli [x trials]), ``unit_ids``, ``time``.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from drift.io.cellreg import read_cellreg
from drift.io.recordings import SessionTimeseries, from_arrays, from_sessions
from drift.io.store import infer_format, write_dataset

__all__ = ["load_recording_spec", "build_recording", "convert_recording"]

_READERS = ("nwb", "suite2p", "timeseries", "arrays")
_TOP_KEYS = {
    "reader",
    "sessions",
    "registration",
    "reader_options",
    "bins",
    "label_range",
    "stimuli",
    "keep_trials",
    "units",
    "long_name",
    "targets",
    "split",
}
_SESSION_KEYS = {
    "nwb": {"path", "time"},
    "suite2p": {"path", "time", "labels", "include", "trials"},
    "timeseries": {"activity", "labels", "include", "trials", "unit_ids", "time"},
    "arrays": {"responses", "unit_ids", "time"},
}
_NEEDS_TIME = ("suite2p", "timeseries", "arrays")


def load_recording_spec(
    spec: str | os.PathLike | Mapping[str, Any], base_dir: str | os.PathLike | None = None
) -> tuple[dict[str, Any], Path, str]:
    """Read and check a conversion spec.

    Parameters
    ----------
    spec : path or mapping
        A ``.yaml``/``.yml``/``.json`` file, or the spec itself.
    base_dir : path, optional
        Folder that relative paths refer to; default: the spec file's folder, or the
        working directory for a mapping.

    Returns
    -------
    spec : dict
    base_dir : Path
    origin : str
        Name of the spec for messages.

    Raises
    ------
    ValueError
        Unreadable file, unknown reader or keys, missing sessions or session times.
    """
    if isinstance(spec, Mapping):
        content, origin = dict(spec), "recording spec"
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        path = Path(spec)
        origin = f"recording spec {path}"
        if not path.is_file():
            raise ValueError(f"{origin}: no such file")
        text = path.read_text()
        try:
            content = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise ValueError(f"{origin}: not valid YAML/JSON ({err})") from None
        if not isinstance(content, dict):
            raise ValueError(f"{origin}: expected a mapping of keys at top level")
        base = Path(base_dir) if base_dir is not None else path.parent
    unknown = sorted(set(content) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"{origin}: unknown keys {unknown} (known: {sorted(_TOP_KEYS)})")
    reader = content.get("reader")
    if reader not in _READERS:
        raise ValueError(f"{origin}: reader must be one of {list(_READERS)}, got {reader!r}")
    sessions = content.get("sessions")
    if not isinstance(sessions, list) or not sessions:
        raise ValueError(f"{origin}: sessions must be a non-empty list")
    for k, entry in enumerate(sessions):
        if isinstance(entry, str) and reader == "nwb":
            sessions[k] = entry = {"path": entry}
        if not isinstance(entry, dict):
            raise ValueError(f"{origin}: sessions[{k}] must be a mapping")
        bad = sorted(set(entry) - _SESSION_KEYS[reader])
        if bad:
            raise ValueError(
                f"{origin}: sessions[{k}] has keys {bad} not used by reader {reader!r} "
                f"(known: {sorted(_SESSION_KEYS[reader])})"
            )
        if reader in _NEEDS_TIME and "time" not in entry:
            raise ValueError(f"{origin}: sessions[{k}] needs a time (days or a date)")
    options = content.get("reader_options", {}) or {}
    if not isinstance(options, dict):
        raise ValueError(f"{origin}: reader_options must be a mapping")
    if options and reader not in ("nwb", "suite2p"):
        raise ValueError(f"{origin}: reader_options apply to the nwb and suite2p readers only")
    return content, base, origin


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, str):
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p
    return value


def _npy(base: Path, value: Any, what: str, origin: str) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, list):
        return np.asarray(value)
    path = _resolve(base, value)
    if not isinstance(path, Path) or path.suffix.lower() != ".npy":
        raise ValueError(f"{origin}: {what} must name a .npy file, got {value!r}")
    if not path.is_file():
        raise ValueError(f"{origin}: {what} file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"{what} file {path}: not a .npy array ({err})") from None


def _common_kwargs(content: dict[str, Any]) -> dict[str, Any]:
    keys = ("bins", "label_range", "stimuli", "units", "long_name", "targets", "split")
    kwargs = {k: content[k] for k in keys if content.get(k) is not None}
    if "label_range" in kwargs:
        kwargs["label_range"] = tuple(kwargs["label_range"])
    return kwargs


def _check_options(reader: str, options: dict[str, Any], origin: str) -> None:
    from drift.io.nwb import read_nwb
    from drift.io.suite2p import read_suite2p

    func = read_nwb if reader == "nwb" else read_suite2p
    params = inspect.signature(func).parameters
    allowed = sorted(
        n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n not in _SESSION_KEYS[reader]
    )
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ValueError(
            f"{origin}: reader_options {bad} are not options of the {reader} reader "
            f"(options: {allowed})"
        )


def build_recording(
    spec: str | os.PathLike | Mapping[str, Any], base_dir: str | os.PathLike | None = None
) -> xr.Dataset:
    """The dataset a spec describes (see the module docstring), without writing it.

    Parameters
    ----------
    spec : path or mapping
        Conversion spec.
    base_dir : path, optional
        Folder that relative paths refer to.

    Returns
    -------
    xarray.Dataset
        ``kind = "recording"`` dataset of docs/data_format.md.

    Raises
    ------
    ValueError
        Bad spec or bad input files (messages name the file and the problem).
    """
    content, base, origin = load_recording_spec(spec, base_dir)
    reader = content["reader"]
    entries = content["sessions"]
    options = dict(content.get("reader_options") or {})
    if options:
        _check_options(reader, options, origin)
    kwargs = _common_kwargs(content)
    registration = content.get("registration")

    if reader == "arrays":
        if registration is not None:
            raise ValueError(f"{origin}: the arrays reader matches units by unit_ids only")
        for key in ("bins", "label_range", "stimuli"):
            if key in kwargs:
                raise ValueError(f"{origin}: {key} does not apply to the arrays reader")
        responses = [_npy(base, e.get("responses"), "responses", origin) for e in entries]
        if any(r is None for r in responses):
            raise ValueError(f"{origin}: every session needs responses")
        ids = [_npy(base, e.get("unit_ids"), "unit_ids", origin) for e in entries]
        if any(i is not None for i in ids) and not all(i is not None for i in ids):
            raise ValueError(f"{origin}: give unit_ids for every session or for none")
        return from_arrays(
            responses,
            [e["time"] for e in entries],
            ids if ids[0] is not None else None,
            sources=[str(_resolve(base, e["responses"])) for e in entries],
            **kwargs,
        )

    sessions: list[SessionTimeseries] = []
    for k, e in enumerate(entries):
        if reader == "nwb":
            from drift.io.nwb import read_nwb

            if "path" not in e:
                raise ValueError(f"{origin}: sessions[{k}] needs a path")
            sessions.append(read_nwb(_resolve(base, e["path"]), time=e.get("time"), **options))
        elif reader == "suite2p":
            from drift.io.suite2p import read_suite2p

            if "path" not in e or "labels" not in e:
                raise ValueError(f"{origin}: sessions[{k}] needs a path and labels")
            sessions.append(
                read_suite2p(
                    _resolve(base, e["path"]),
                    _npy(base, e["labels"], "labels", origin),
                    e["time"],
                    include=_npy(base, e.get("include"), "include", origin),
                    trials=_npy(base, e.get("trials"), "trials", origin),
                    **options,
                )
            )
        else:
            if "activity" not in e or "labels" not in e:
                raise ValueError(f"{origin}: sessions[{k}] needs activity and labels")
            sessions.append(
                SessionTimeseries(
                    activity=_npy(base, e["activity"], "activity", origin),
                    labels=_npy(base, e["labels"], "labels", origin),
                    time=e["time"],
                    include=_npy(base, e.get("include"), "include", origin),
                    trials=_npy(base, e.get("trials"), "trials", origin),
                    unit_ids=_npy(base, e.get("unit_ids"), "unit_ids", origin),
                    source=str(_resolve(base, e["activity"])),
                )
            )
    if registration is not None and registration != "unit_ids":
        registration = read_cellreg(
            _resolve(base, registration),
            [s.activity.shape[1] for s in sessions],
            sources=[s.source for s in sessions],
        )
    return from_sessions(
        sessions, registration, keep_trials=bool(content.get("keep_trials", True)), **kwargs
    )


def convert_recording(
    spec: str | os.PathLike | Mapping[str, Any],
    output: str | os.PathLike,
    *,
    fmt: str | None = None,
    overwrite: bool = False,
    base_dir: str | os.PathLike | None = None,
) -> xr.Dataset:
    """Convert a recording to a netCDF file or zarr store in the project format.

    Parameters
    ----------
    spec : path or mapping
        YAML/JSON conversion spec (see :mod:`drift.io.convert`), or the mapping itself.
    output : path
        ``.nc`` (netCDF-4 via h5netcdf) or ``.zarr``.
    fmt : {"netcdf", "zarr"}, optional
        Default: from ``output``'s suffix.
    overwrite : bool
        Replace an existing output (only after the new one is complete).
    base_dir : path, optional
        Folder that relative paths in the spec refer to.

    Returns
    -------
    xarray.Dataset
        The dataset written.

    Raises
    ------
    ValueError
        Bad spec, bad input files, or an output format that cannot be told.
    FileExistsError
        When ``output`` exists and ``overwrite`` is false.
    """
    target = Path(output)
    infer_format(target, fmt)
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise FileExistsError(f"output {target} exists; pass overwrite to replace it")
    ds = build_recording(spec, base_dir)
    write_dataset(ds, output, fmt=fmt, overwrite=overwrite)
    return ds
