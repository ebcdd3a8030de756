"""Cross-session cell registrations: CellReg files, validation, matching by unit id.

Conventions
-----------
Inside ndk-drift a registration is an integer array of shape ``(units, sessions)``
whose entry ``[u, k]`` is the **0-based** index of unit ``u`` among the cells of session
``k`` (the column of that session's ``(frames, cells)`` activity), and ``-1`` where the
unit was not found in that session.

CellReg's ``cell_to_index_map`` has the same layout (registered cells x sessions) but is
**1-based** with ``0`` for "not found"; :func:`read_cellreg` converts it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drift.io._common import RecordingWarning, describe_session

__all__ = ["read_cellreg", "validate_registration", "match_unit_ids"]

_MAP = "cell_to_index_map"
_STRUCT = "cell_registered_struct"


def validate_registration(
    registration: Any,
    n_cells: Sequence[int] | None = None,
    *,
    sources: Sequence[str] | None = None,
    origin: str | None = None,
) -> np.ndarray:
    """Check a 0-based registration and return it as an ``int64`` array.

    Parameters
    ----------
    registration : array_like, shape (units, sessions)
        0-based cell index of each unit in each session, ``-1`` where absent.
    n_cells : sequence of int, shape (sessions,), optional
        Number of cells of each session; indices must be below it.
    sources : sequence of str, optional
        Names of the sessions' files, used in messages.
    origin : str, optional
        Name of the registration's file, used in messages.

    Returns
    -------
    ndarray of int64, shape (units, sessions)

    Raises
    ------
    ValueError
        Wrong shape, non-integer or non-finite entries, an index below -1, an index out
        of range for its session, a cell registered to two units, or a session count
        that does not match ``n_cells``.
    """
    where = f"registration {origin}" if origin else "registration"
    reg = np.asarray(registration)
    if reg.ndim != 2:
        raise ValueError(f"{where}: expected a 2-D (units, sessions) array, got shape {reg.shape}")
    if reg.dtype.kind == "b" or reg.dtype.kind not in "iuf":
        raise ValueError(f"{where}: expected integer indices, got dtype {reg.dtype}")
    if reg.dtype.kind == "f":
        if not np.all(np.isfinite(reg)):
            raise ValueError(f"{where}: contains NaN or infinite entries")
        if not np.all(reg == np.round(reg)):
            raise ValueError(f"{where}: contains non-integer entries")
    reg = reg.astype(np.int64)
    if reg.size and reg.min() < -1:
        raise ValueError(f"{where}: index {reg.min()} is below -1 (the 'absent' marker)")
    if n_cells is not None:
        if len(n_cells) != reg.shape[1]:
            raise ValueError(
                f"{where}: has {reg.shape[1]} session columns but {len(n_cells)} sessions "
                "were given"
            )
    for k in range(reg.shape[1]):
        column = reg[:, k]
        present = column[column >= 0]
        session = describe_session(k, sources)
        if n_cells is not None and present.size and present.max() >= n_cells[k]:
            bad = int(present.max())
            raise ValueError(
                f"{where}: cell index {bad} (0-based) is out of range for {session}, "
                f"which has {n_cells[k]} cells"
            )
        values, counts = np.unique(present, return_counts=True)
        if np.any(counts > 1):
            dup = int(values[counts > 1][0])
            raise ValueError(f"{where}: cell {dup} of {session} is registered to several units")
    return reg


def _from_cellreg_map(raw: Any, origin: str) -> np.ndarray:
    arr = np.asarray(raw)
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
        raise ValueError(f"registration {origin}: {_MAP} is not numeric (dtype {arr.dtype})")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"registration {origin}: {_MAP} has shape {arr.shape}, expected 2-D")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"registration {origin}: {_MAP} contains NaN or infinite entries")
    if arr.size and arr.min() < 0:
        raise ValueError(
            f"registration {origin}: {_MAP} has negative entry {arr.min()}; CellReg indices "
            "are 1-based with 0 for 'not found'"
        )
    return validate_registration(arr.astype(np.float64) - 1.0, origin=origin)


def _read_mat_v5(path: Path) -> Any:
    from scipy.io import loadmat

    try:
        content = loadmat(path, squeeze_me=False, struct_as_record=True)
    except NotImplementedError:  # v7.3 claims, read by h5py instead
        return None
    except Exception as err:  # scipy raises several types for corrupt files
        raise ValueError(f"registration {path}: not a readable MATLAB file ({err})") from None
    if _MAP in content:
        return content[_MAP]
    if _STRUCT in content:
        struct = content[_STRUCT]
        names = struct.dtype.names or ()
        if _MAP not in names:
            raise ValueError(f"registration {path}: {_STRUCT} has no field {_MAP}")
        return struct[_MAP].ravel()[0]
    keys = sorted(k for k in content if not k.startswith("__"))
    raise ValueError(
        f"registration {path}: no {_MAP} or {_STRUCT}.{_MAP} in the file (variables: {keys})"
    )


def _read_mat_v73(path: Path) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as f:
        if _MAP in f and isinstance(f[_MAP], h5py.Dataset):
            data = f[_MAP][()]
        elif _STRUCT in f and isinstance(f[_STRUCT], h5py.Group) and _MAP in f[_STRUCT]:
            data = f[_STRUCT][_MAP][()]
        else:
            raise ValueError(
                f"registration {path}: no {_MAP} or {_STRUCT}.{_MAP} in the file "
                f"(top-level entries: {sorted(f.keys())})"
            )
    if data.dtype.kind == "O" or data.dtype.names:
        raise ValueError(f"registration {path}: {_MAP} is not a numeric array")
    # MATLAB writes arrays column-major, so HDF5 holds the transpose.
    return np.asarray(data).T


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(path))
    except OSError:
        return False


def read_cellreg(
    source: str | os.PathLike | np.ndarray,
    n_cells: Sequence[int] | None = None,
    *,
    sources: Sequence[str] | None = None,
) -> np.ndarray:
    """Read a CellReg registration and convert it to the 0-based convention.

    Parameters
    ----------
    source : path or array_like
        A MATLAB file holding ``cell_to_index_map`` at top level or as the field
        ``cell_registered_struct.cell_to_index_map`` (v5/v7 read with scipy, v7.3 HDF5
        files read with h5py and transposed back to MATLAB's layout); a ``.npy`` file;
        or an array. The map is (registered cells, sessions), 1-based, ``0`` = not found.
    n_cells : sequence of int, shape (sessions,), optional
        Cells per session, to check indices against.
    sources : sequence of str, optional
        Names of the sessions' files, used in messages.

    Returns
    -------
    ndarray of int64, shape (units, sessions)
        0-based index of each registered cell in each session, ``-1`` where absent.
        Rows absent from every session are dropped with a :class:`RecordingWarning`.

    Raises
    ------
    ValueError
        When the file is missing, of the wrong type, lacks the map, or the map is invalid
        (the message names the file and the problem).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        origin = str(path)
        if not path.is_file():
            raise ValueError(f"registration {path}: no such file")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            try:
                raw = np.load(path, allow_pickle=False)
            except ValueError as err:
                raise ValueError(f"registration {path}: not a numeric .npy array ({err})") from None
        elif _is_hdf5(path):
            raw = _read_mat_v73(path)
        elif suffix == ".mat":
            raw = _read_mat_v5(path)
            if raw is None:
                raise ValueError(f"registration {path}: not a readable MATLAB file")
        else:
            raise ValueError(
                f"registration {path}: unsupported file type {suffix or '(none)'}; "
                "expected a MATLAB .mat file or a .npy array"
            )
    else:
        origin = "(array)"
        raw = source
    reg = _from_cellreg_map(raw, origin)
    empty = np.all(reg < 0, axis=1)
    if np.any(empty):
        warnings.warn(
            f"registration {origin}: dropped {int(empty.sum())} registered cells found in no "
            "session",
            RecordingWarning,
            stacklevel=2,
        )
        reg = reg[~empty]
    if n_cells is not None:
        reg = validate_registration(reg, n_cells, sources=sources, origin=origin)
    return reg


def match_unit_ids(
    unit_ids: Sequence[Any], sources: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Register units across sessions by equal ids (e.g. sorted units with stable ids).

    Parameters
    ----------
    unit_ids : sequence of array_like, each shape (cells_k,)
        Ids of the cells of each session, unique within a session.
    sources : sequence of str, optional
        Names of the sessions' files, used in messages.

    Returns
    -------
    registration : ndarray of int64, shape (units, sessions)
        0-based index of each id in each session, ``-1`` where absent.
    ids : ndarray, shape (units,)
        The ids, sorted when they are mutually comparable, else in first-seen order.

    Raises
    ------
    ValueError
        When an id repeats within a session.
    """
    per_session = [np.asarray(ids).ravel() for ids in unit_ids]
    order: dict[Any, int] = {}
    for k, ids in enumerate(per_session):
        seen = set()
        for value in ids.tolist():
            if value in seen:
                raise ValueError(f"{describe_session(k, sources)}: unit id {value!r} repeats")
            seen.add(value)
            order.setdefault(value, len(order))
    keys = list(order)
    try:
        keys = sorted(keys)
    except TypeError:
        pass
    row = {key: i for i, key in enumerate(keys)}
    reg = np.full((len(keys), len(per_session)), -1, dtype=np.int64)
    for k, ids in enumerate(per_session):
        for j, value in enumerate(ids.tolist()):
            reg[row[value], k] = j
    return reg, np.asarray(keys)
