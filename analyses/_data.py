"""Input handling shared by every analysis: the project's xarray format (docs/data_format.md)."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "CORE_DIMS",
    "activity",
    "batch_dims",
    "ref_copy",
    "with_time_coords",
]

CORE_DIMS = ("time", "unit", "stimulus")


def activity(data: xr.Dataset | xr.DataArray, variable: str = "activity") -> xr.DataArray:
    """Return the activity array of ``data`` as floating point.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        A dataset in the project's format (its ``variable`` is used) or the activity array
        itself, with dims ``time``, ``unit``, ``stimulus`` plus any batch dims.
    variable : str
        Name of the data variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.DataArray
        The array, with integer ``time``/``unit``/``stimulus`` coordinates added when absent.

    Raises
    ------
    ValueError
        When a core dim is missing.
    """
    if isinstance(data, xr.Dataset):
        if variable not in data:
            raise ValueError(f"dataset has no variable {variable!r}; has {list(data.data_vars)}")
        arr = data[variable]
    elif isinstance(data, xr.DataArray):
        arr = data
    else:
        raise TypeError(f"expected an xarray Dataset or DataArray, got {type(data).__name__}")
    missing = [d for d in CORE_DIMS if d not in arr.dims]
    if missing:
        raise ValueError(f"activity must have dims {CORE_DIMS}; missing {missing}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    for d in CORE_DIMS:
        if d not in arr.coords:
            arr = arr.assign_coords({d: np.arange(arr.sizes[d])})
    return arr


def batch_dims(arr: xr.DataArray, *exclude: str) -> list[str]:
    """Dims of ``arr`` other than the core dims and ``exclude``, in their order."""
    skip = set(CORE_DIMS) | set(exclude)
    return [d for d in arr.dims if d not in skip]


def ref_copy(arr: xr.DataArray, dim: str, suffix: str = "_ref") -> xr.DataArray:
    """Rename ``dim`` to ``dim + suffix``, and every coordinate on ``dim`` likewise.

    Used to form the second operand of a pairwise statistic (``time`` -> ``time_ref``);
    the data are shared, not copied.
    """
    new = dim + suffix
    names = {dim: new}
    for name, coord in arr.coords.items():
        if name != dim and dim in coord.dims:
            names[name] = name + suffix
    out = arr.rename(names)
    return out


def with_time_coords(val: xr.DataArray, arr: xr.DataArray) -> xr.DataArray:
    """Give ``val`` the ``time`` coordinate of ``arr`` on ``time`` and ``time_ref``."""
    t = arr["time"]
    out = val.assign_coords(time=("time", t.values, t.attrs))
    if "time_ref" in val.dims:
        out = out.assign_coords(time_ref=("time_ref", t.values, t.attrs))
    return out
