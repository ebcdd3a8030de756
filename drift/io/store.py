"""Writing whole datasets to disk: netCDF-4 (via h5netcdf) or zarr.

:func:`write_dataset` writes next to the target first and moves the result into place
only once it is complete, so an existing output is never left half-replaced.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import xarray as xr

__all__ = ["infer_format", "write_dataset"]

_SUFFIXES = {".nc": "netcdf", ".nc4": "netcdf", ".netcdf": "netcdf", ".zarr": "zarr"}
_FORMATS = ("netcdf", "zarr")


def infer_format(target: str | os.PathLike, fmt: str | None = None) -> str:
    """The storage format of ``target``: ``fmt`` when given, else from the suffix.

    Parameters
    ----------
    target : path
        Output file (``.nc``) or store (``.zarr``).
    fmt : {"netcdf", "zarr"}, optional

    Returns
    -------
    str
        ``"netcdf"`` or ``"zarr"``.

    Raises
    ------
    ValueError
        When ``fmt`` is unknown, or absent and the suffix does not tell.
    """
    if fmt is not None:
        if fmt not in _FORMATS:
            raise ValueError(f"format must be one of {list(_FORMATS)} (got {fmt!r})")
        return fmt
    suffix = Path(target).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(
            f"cannot tell the format of {os.fspath(target)!r} from its suffix; "
            "use .nc (netCDF) or .zarr, or pass fmt='netcdf' / fmt='zarr'"
        )
    return _SUFFIXES[suffix]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_dataset(
    ds: xr.Dataset,
    output: str | os.PathLike,
    *,
    fmt: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``ds`` to a netCDF file or a zarr store.

    Parameters
    ----------
    ds : xarray.Dataset
    output : path
    fmt : {"netcdf", "zarr"}, optional
        Default: from ``output``'s suffix (:func:`infer_format`).
    overwrite : bool
        Replace an existing output (only after the new one is complete).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    FileExistsError
        When ``output`` exists and ``overwrite`` is false.
    ValueError
        When the format cannot be told.
    """
    target = Path(output)
    kind = infer_format(target, fmt)
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise FileExistsError(f"output {target} exists; pass overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staged = tmp / target.name
    try:
        if kind == "netcdf":
            ds.to_netcdf(staged, engine="h5netcdf")
        else:
            ds.to_zarr(str(staged), mode="w", consolidated=False, zarr_format=3)
        if target.exists() or target.is_symlink():
            _remove(target)
        os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
