"""Drift analyses over a whole sweep, streamed from the run stores."""

from __future__ import annotations

import json
from collections.abc import Sequence

import xarray as xr

__all__ = ["sweep_dims", "sweep_drift_summary"]


def sweep_dims(ds: xr.Dataset | xr.DataArray) -> list[str]:
    """The sweep dimensions of a dataset from :func:`drift.sweep.open_sweep`.

    Grid mode: one per swept parameter; zip mode: ``["run"]``.
    """
    params = json.loads(ds.attrs.get("sweep_parameters", "[]"))
    if ds.attrs.get("sweep_mode") == "zip":
        return ["run"]
    return [p["dim"] for p in params if p["dim"] in ds.dims]


def sweep_drift_summary(
    ds: xr.Dataset,
    *,
    measure: str = "pv",
    layer: int | None = None,
    pool: Sequence[str] = ("member",),
    bins: int | Sequence[float] | None = None,
    n_boot: int = 0,
    ci: float = 0.95,
    seed: int = 0,
    include_zero_lag: bool = False,
) -> xr.Dataset:
    """Drift time constant and floor of every run of a sweep, e.g. ``tau_d(T, width)``.

    Fits ``c(tau) = c_inf + (c_0 - c_inf) exp(-tau / tau_d)`` to the similarity of
    hidden-layer activity as a function of elapsed time
    (:func:`analyses.fit_drift`), for every point of the sweep (and layer). The pairwise
    statistics are computed from the dask-backed dataset chunk by chunk, so the sweep is
    never loaded whole; only the small ``(time, time_ref)`` matrices are.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep from :func:`drift.sweep.open_sweep` (or any dataset with ``activity``
        over ``time``, ``unit``, ``stimulus`` plus batch dims).
    measure : {"pv", "tuning", "rate"}
        Population-vector, tuning-curve or ensemble-rate correlation.
    layer : int, optional
        Hidden layer to analyse (1..L); default: every recorded layer, fitted separately.
    pool : sequence of str
        Dims averaged before the fit and resampled in the bootstrap: the ensemble members
        by default; add a swept seed dimension (e.g. ``("member", "seed")``) to pool
        replicate runs.
    bins : None, int or sequence of float
        Elapsed-time bins (:func:`analyses.elapsed.lag_bins`); None: one per distinct lag.
    n_boot : int
        Bootstrap resamples of units (and pooled dims) for confidence intervals; each
        costs one more pass over the data. 0: point estimates only.
    ci : float
        Confidence level of the intervals.
    seed : int
        Seed of the resampling.
    include_zero_lag : bool
        Fit the lag-0 pairs too.

    Returns
    -------
    xarray.Dataset
        ``tau_d`` (time units of the dynamics), ``c_0``, ``c_inf`` over the remaining
        sweep dims (and ``layer``), their ``*_ci`` intervals (dim ``bound``), the pooled
        ``curve``, ``fitted`` and ``n_pairs`` over ``elapsed``; the sweep coordinates are
        kept. Attributes as :func:`analyses.fit_drift` plus ``sweep_parameters``.
    """
    from analyses import fit_drift

    if "activity" not in ds:
        raise ValueError(f"dataset has no `activity` variable (has {list(ds.data_vars)})")
    arr = ds["activity"]
    if layer is not None:
        if "layer" not in arr.dims or layer not in arr["layer"].values:
            have = arr["layer"].values.tolist() if "layer" in arr.dims else []
            raise ValueError(f"layer {layer} is not recorded (recorded layers: {have})")
        arr = arr.sel(layer=layer)
    unknown = [d for d in pool if d not in arr.dims]
    if unknown:
        raise ValueError(f"pool dims {unknown} are not dims of the activity {list(arr.dims)}")
    fit = fit_drift(
        arr, measure=measure, bins=bins, n_boot=n_boot, ci=ci, pool=tuple(pool), seed=seed,
        include_zero_lag=include_zero_lag,
    )
    kept = {
        name: coord for name, coord in ds.coords.items()
        if name not in fit.coords and coord.dims and set(coord.dims) <= set(fit.dims)
        and "time" not in coord.dims and "stimulus" not in coord.dims
    }
    fit = fit.assign_coords(kept)
    if "sweep_parameters" in ds.attrs:
        fit.attrs["sweep_parameters"] = ds.attrs["sweep_parameters"]
    return fit
