"""Zarr stores of simulation runs: streaming writes, checkpoints, safe re-opening.

Layout of a run store ``run.zarr`` (a zarr v3 group readable by ``xarray.open_zarr``):

* every variable of the data format, preallocated on the *full* planned time axis
  (fill value NaN) and chunked one snapshot per chunk along ``time``;
* group attributes ``n_written`` (number of snapshots committed, counted from the
  start of the time axis) and ``complete`` (1 once the run finished, else 0);
* subgroup ``checkpoint`` holding ``state.pt``: weights, random-generator state and step
  count of the latest checkpoint (``torch.save``, written atomically: temporary file,
  then ``os.replace``).

A snapshot is written chunk by chunk and *then* committed by raising ``n_written``; a run
killed in between leaves the previous ``n_written``, so the committed part is always
consistent. :func:`open_run` returns the committed part only, checks that it is all
there, and warns when the run is partial.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import xarray as xr
import zarr

from drift.io.schema import MODEL_VARIABLES, validate_dataset

__all__ = [
    "checkpoint_path",
    "PartialRunWarning",
    "StoreWriter",
    "create_store",
    "is_store",
    "load_checkpoint",
    "open_run",
    "remove_store",
    "save_checkpoint",
]

CHECKPOINT_GROUP = "checkpoint"
CHECKPOINT_FILE = "state.pt"


def checkpoint_path(store: str | Path) -> Path:
    """Where the checkpoint of the run in ``store`` lives."""
    return Path(store) / CHECKPOINT_GROUP / CHECKPOINT_FILE


class PartialRunWarning(UserWarning):
    """The run in a store stopped before its last snapshot (interrupted or diverged)."""


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a zarr group directory."""
    p = Path(path)
    return p.is_dir() and (p / "zarr.json").is_file()


def remove_store(path: str | Path) -> None:
    """Delete a run store; refuses to delete anything that is not a zarr store."""
    p = Path(path)
    if not p.exists():
        return
    if not is_store(p):
        raise FileExistsError(
            f"{str(p)!r} exists and is not a zarr store; refusing to delete it "
            "(choose another output path)"
        )
    shutil.rmtree(p)


def create_store(
    path: str | Path, template: xr.Dataset, encoding: Mapping[str, Mapping]
) -> None:
    """Write the skeleton of a run store: coordinates, attributes, empty variables.

    Parameters
    ----------
    path : str or Path
        New ``.zarr`` directory (must not exist).
    template : xarray.Dataset
        The full dataset with lazy (dask) data variables; only metadata and coordinates
        are written.
    encoding : mapping
        Per-variable zarr encoding (``chunks``).
    """
    template.to_zarr(
        str(path), mode="w-", compute=False, consolidated=False, zarr_format=3,
        encoding=dict(encoding),
    )
    zarr.open_group(str(path), mode="r+").create_group(
        CHECKPOINT_GROUP,
        attributes={
            "description": f"checkpoint of the run: {CHECKPOINT_FILE} (torch.save) holds the "
            "weights, the random-generator state and the step count"
        },
    )


class StoreWriter:
    """Writes snapshots into a store made by :func:`create_store`.

    Parameters
    ----------
    path : str or Path
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.group = zarr.open_group(str(self.path), mode="r+")
        self.arrays = {name: self.group[name] for name in MODEL_VARIABLES}

    @property
    def n_written(self) -> int:
        return int(self.group.attrs.get("n_written", 0))

    def write(self, index: int, values: Mapping[str, np.ndarray]) -> None:
        """Write snapshot ``index`` of every variable (not yet committed)."""
        for name, arr in values.items():
            self.arrays[name][index] = arr

    def commit(self, n_written: int) -> None:
        """Declare the first ``n_written`` snapshots complete."""
        self.group.attrs["n_written"] = int(n_written)

    def set_attrs(self, **attrs) -> None:
        """Update group attributes (one metadata write)."""
        self.group.attrs.update(attrs)


def save_checkpoint(store: str | Path, state: Mapping) -> None:
    """Atomically write ``state`` (tensors, numbers, strings) as the checkpoint of ``store``."""
    path = checkpoint_path(store)
    path.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(store: str | Path) -> dict:
    """Read the checkpoint of ``store`` written by :func:`save_checkpoint` (tensors on CPU)."""
    path = checkpoint_path(store)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint in {str(store)!r} (expected {str(path)!r})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file: say which one
        raise ValueError(f"checkpoint {str(path)!r} is unreadable ({exc})") from None


def _missing_chunks(path: Path, group: zarr.Group, name: str, n: int) -> list[int]:
    """Indices ``< n`` along time for which a chunk file of ``name`` is absent."""
    arr = group[name]
    grid = [range(-(-s // c)) for s, c in zip(arr.shape[1:], arr.chunks[1:], strict=True)]
    if arr.chunks[0] != 1:
        return []
    missing = []
    for t in range(n):
        for rest in np.ndindex(*[len(g) for g in grid]) if grid else [()]:
            key = arr.metadata.encode_chunk_key((t, *rest))
            if not (path / name / key).is_file():
                missing.append(t)
                break
    return missing


def open_run(path: str | Path) -> xr.Dataset:
    """Open a simulation store: validated, committed snapshots only, lazily loaded.

    Parameters
    ----------
    path : str or Path
        A ``.zarr`` store written by :func:`drift.simulate.simulate`.

    Returns
    -------
    xarray.Dataset
        The first ``n_written`` snapshots (dask-backed; nothing is read until used).

    Warns
    -----
    PartialRunWarning
        When the run did not finish (``complete`` is not 1): the committed snapshots are
        still returned.

    Raises
    ------
    ValueError
        When the store is corrupt or inconsistent: a variable's time length differs from
        the ``time`` coordinate, ``n_written`` is missing or out of range, a committed
        chunk is missing or unreadable, or the data violate the format.
    FileNotFoundError
        When there is no store at ``path``.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no run store at {str(p)!r}")
    if not is_store(p):
        raise ValueError(f"{str(p)!r} is not a zarr store (no zarr.json)")
    try:
        group = zarr.open_group(str(p), mode="r")
    except Exception as exc:
        raise ValueError(f"{str(p)!r} is not a readable zarr store ({exc})") from None
    names = set(group.array_keys())
    missing = sorted((set(MODEL_VARIABLES) | {"time"}) - names)
    if missing:
        raise ValueError(f"run store {str(p)!r} is incomplete: arrays {missing} are missing")
    n_time = group["time"].shape[0]
    lengths = {name: group[name].shape[0] for name in MODEL_VARIABLES}
    bad = {k: v for k, v in lengths.items() if v != n_time}
    if bad:
        raise ValueError(
            f"run store {str(p)!r} is inconsistent: the time coordinate has {n_time} entries "
            f"but {bad} along time (truncated or corrupt store)"
        )
    attrs = dict(group.attrs)
    if "n_written" not in attrs:
        raise ValueError(
            f"run store {str(p)!r} lacks the `n_written` attribute: not written by "
            "drift.simulate, or its metadata is corrupt"
        )
    n = attrs["n_written"]
    if not isinstance(n, int) or not 0 <= n <= n_time:
        raise ValueError(
            f"run store {str(p)!r} is inconsistent: n_written = {n!r} but the time axis "
            f"has {n_time} entries"
        )
    for name in MODEL_VARIABLES:
        gaps = _missing_chunks(p, group, name, n)
        if gaps:
            raise ValueError(
                f"run store {str(p)!r} is corrupt: variable `{name}` has no data for "
                f"committed snapshots {gaps[:10]} (of {n}); the store was truncated"
            )
    try:
        ds = xr.open_zarr(str(p), consolidated=False)
    except Exception as exc:
        raise ValueError(f"run store {str(p)!r} cannot be opened ({exc})") from None
    ds = ds.isel(time=slice(0, n))
    # small variables: read them now to catch damaged chunks and holes
    for name in ("loss", "output", "readout"):
        try:
            values = ds[name].values
        except Exception as exc:
            raise ValueError(
                f"run store {str(p)!r} is corrupt: variable `{name}` cannot be read ({exc})"
            ) from None
        if np.isnan(values).any():
            rows = np.flatnonzero(np.isnan(values).reshape(n, -1).any(axis=1))
            raise ValueError(
                f"run store {str(p)!r} is corrupt: variable `{name}` has no data for "
                f"committed snapshots {rows[:10].tolist()}"
            )
    validate_dataset(ds, kind="simulation", check_values=False)
    if int(attrs.get("complete", 0)) != 1:
        why = attrs.get("error") or "interrupted"
        warnings.warn(
            f"run store {str(p)!r} is partial: {n} of {n_time} snapshots were written "
            f"({why}); resume it with simulate(..., resume=True)",
            PartialRunWarning,
            stacklevel=2,
        )
    return ds
