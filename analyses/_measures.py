"""Similarity measures between the times of two activity arrays (shared by drift analyses)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from analyses._data import ref_copy
from analyses.pairwise import count, pairwise_sums, pearson


def pv_pair(x: xr.DataArray, y: xr.DataArray, weights=None) -> tuple[xr.DataArray, xr.DataArray]:
    """Per-stimulus PV correlation between the times of ``x`` and ``y`` (over units)."""
    yr = ref_copy(y, "time")
    s = pairwise_sums(x, yr, "time", "time_ref", "unit", weights=weights, shift="vector")
    return pearson(s), s.sel(stat="n", drop=True)


def tuning_pair(x: xr.DataArray, y: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    s = pairwise_sums(x, ref_copy(y, "time"), "time", "time_ref", "stimulus", shift="vector")
    return pearson(s), count(s)


def unit_rates(arr: xr.DataArray) -> xr.DataArray:
    return arr.mean("stimulus", skipna=True)


def rate_pair(x: xr.DataArray, y: xr.DataArray, weights=None) -> tuple[xr.DataArray, xr.DataArray]:
    rx, ry = unit_rates(x), ref_copy(unit_rates(y), "time")
    s = pairwise_sums(rx, ry, "time", "time_ref", "unit", weights=weights, shift="vector")
    return pearson(s), s.sel(stat="n", drop=True)


def measure_matrix(x, y, measure: str, weights=None) -> xr.DataArray:
    """Similarity between the times of ``x`` and ``y`` averaged over stimuli or units.

    ``measure``: ``"pv"`` (PV correlation, mean over stimuli), ``"rate"`` (ensemble rate
    correlation) or ``"tuning"`` (tuning-curve correlation, mean over units). ``weights``
    (one per unit) weight the units, e.g. bootstrap counts. Dims (batch..., ``time``,
    ``time_ref``).
    """
    if measure == "pv":
        return pv_pair(x, y, weights)[0].mean("stimulus", skipna=True)
    if measure == "rate":
        return rate_pair(x, y, weights)[0]
    if measure == "tuning":
        r = tuning_pair(x, y)[0]
        if weights is None:
            return r.mean("unit", skipna=True)
        w = xr.DataArray(np.asarray(weights, dtype=float), dims="unit")
        ok = r.notnull()
        return (r.fillna(0) * w).sum("unit") / (ok * w).sum("unit")
    raise ValueError(f"measure must be 'pv', 'tuning' or 'rate', got {measure!r}")
