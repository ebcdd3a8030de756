"""Drift time constant: exponential fit of similarity versus elapsed time, with bootstrap.

The model is ``c(tau) = c_inf + (c_0 - c_inf) exp(-tau / tau_d)``: ``tau_d`` is the drift
time constant (units of the ``time`` coordinate) and ``c_inf`` the floor that the
similarity approaches (THEORY.md section 6: the two-time autocorrelation decays to
``(E phi)^2``, not to 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import optimize

from analyses._data import activity, with_time_coords
from analyses._measures import measure_matrix, tuning_pair
from analyses.elapsed import by_elapsed_time

__all__ = ["exp_decay", "fit_exponential", "drift_curve", "fit_drift"]


def exp_decay(tau: np.ndarray, c_0: float, c_inf: float, tau_d: float) -> np.ndarray:
    """``c_inf + (c_0 - c_inf) exp(-tau / tau_d)``."""
    return c_inf + (c_0 - c_inf) * np.exp(-np.asarray(tau, dtype=float) / tau_d)


def fit_exponential(
    elapsed: np.ndarray,
    values: np.ndarray,
    n_pairs: np.ndarray | None = None,
    bounds: tuple[float, float] = (-1.0, 1.0),
) -> tuple[float, float, float]:
    """Least-squares fit of :func:`exp_decay` to one curve.

    Uses :func:`scipy.optimize.curve_fit` (trust-region reflective, so the bounds hold).

    Parameters
    ----------
    elapsed : ndarray, shape (K,)
        Elapsed times (> 0 for the fit to identify ``c_0``).
    values : ndarray, shape (K,)
        Similarity at each elapsed time; NaN points are skipped.
    n_pairs : ndarray, shape (K,), optional
        Number of pairs behind each point; points are weighted by it (``sigma ~ n^-1/2``).
    bounds : (float, float)
        Range allowed for ``c_0`` and ``c_inf`` (correlations: [-1, 1]).

    Returns
    -------
    (c_0, c_inf, tau_d) : tuple of float
        NaN when fewer than 3 finite points or the fit does not converge. ``tau_d`` is
        bounded to (0, 1000 x the largest elapsed time].
    """
    x = np.asarray(elapsed, dtype=float)
    y = np.asarray(values, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    sigma = None
    if n_pairs is not None:
        npr = np.asarray(n_pairs, dtype=float)
        ok &= npr > 0
        sigma = 1.0 / np.sqrt(npr[ok])
    x, y = x[ok], y[ok]
    if x.size < 3:
        return (np.nan, np.nan, np.nan)
    lo, hi = bounds
    xmax = float(x.max())
    if xmax <= 0:
        return (np.nan, np.nan, np.nan)
    c0 = float(np.clip(y[np.argmin(x)], lo, hi))
    cinf = float(np.clip(y[np.argmax(x)], lo, hi))
    half = cinf + 0.5 * (c0 - cinf)
    below = np.flatnonzero((y - half) * np.sign(c0 - cinf) <= 0)
    tau0 = float(x[below[0]]) / np.log(2) if below.size else xmax
    tau0 = float(np.clip(tau0, 1e-3 * xmax, 100 * xmax))
    try:
        p, _ = optimize.curve_fit(
            exp_decay,
            x,
            y,
            p0=(c0, cinf, tau0),
            sigma=sigma,
            bounds=([lo, lo, 1e-6 * xmax], [hi, hi, 1e3 * xmax]),
            max_nfev=2000,
        )
    except (RuntimeError, ValueError):
        return (np.nan, np.nan, np.nan)
    return (float(p[0]), float(p[1]), float(p[2]))


def drift_curve(
    data: xr.Dataset | xr.DataArray,
    measure: str = "pv",
    bins: int | Sequence[float] | None = None,
    include_zero_lag: bool = False,
    variable: str = "activity",
) -> xr.Dataset:
    """Similarity as a function of elapsed time.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, batch...).
    measure : {"pv", "tuning", "rate"}
        PV correlation (mean over stimuli), tuning-curve correlation (mean over units) or
        ensemble rate correlation.
    bins : None, int or sequence of float
        Elapsed-time bins (see :func:`analyses.elapsed.lag_bins`).
    include_zero_lag : bool
        Keep the pairs of a time with itself (similarity 1 by construction).
    variable : str
        Activity variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.Dataset
        ``similarity`` and ``n_pairs`` over (batch..., ``elapsed``).
    """
    arr = activity(data, variable)
    return _curve(arr, measure, bins, include_zero_lag, None)


def _curve(arr, measure, bins, include_zero_lag, weights) -> xr.Dataset:
    mat = measure_matrix(arr, arr, measure, weights)
    mat = with_time_coords(mat, arr)
    res = by_elapsed_time(mat.rename("similarity"), bins=bins, zero_lag=include_zero_lag)
    return res.compute()


def _pool(curve: xr.DataArray, pool: list[str], weights: dict[str, np.ndarray]) -> xr.DataArray:
    for d in pool:
        w = xr.DataArray(weights[d], dims=d) if d in weights else xr.ones_like(curve[d], float)
        ok = curve.notnull()
        curve = (curve.fillna(0) * w).sum(d) / (ok * w).sum(d)
    return curve


def _fit_all(curve: xr.DataArray, n_pairs: xr.DataArray) -> np.ndarray:
    """Fit every batch element; returns (..., 3) = (c_0, c_inf, tau_d)."""
    c = curve.transpose(..., "elapsed")
    n = n_pairs.broadcast_like(c).transpose(..., "elapsed").values
    x = c["elapsed"].values
    out = np.full(c.shape[:-1] + (3,), np.nan)
    vals = c.values
    for idx in np.ndindex(c.shape[:-1]):
        out[idx] = fit_exponential(x, vals[idx], n[idx])
    return out


def fit_drift(
    data: xr.Dataset | xr.DataArray,
    measure: str = "pv",
    bins: int | Sequence[float] | None = None,
    n_boot: int = 200,
    ci: float = 0.95,
    pool: Sequence[str] = ("member",),
    seed: int = 0,
    include_zero_lag: bool = False,
    variable: str = "activity",
) -> xr.Dataset:
    """Fit ``c(tau) = c_inf + (c_0 - c_inf) exp(-tau / tau_d)`` with bootstrap intervals.

    The similarity curve (see :func:`drift_curve`) is averaged over the ``pool`` dims
    present (ensemble members by default) and fitted with :func:`fit_exponential`;
    remaining batch dims (e.g. ``layer``) are fitted separately. Confidence intervals are
    percentile intervals over ``n_boot`` bootstrap resamples of units (with replacement,
    as integer weights in the masked sums) and, jointly, of the pooled dims' entries. Each
    resample recomputes the pairwise statistics (the tuning measure reuses the per-unit
    correlations), so the cost is about ``n_boot`` times that of one curve.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, batch...).
    measure : {"pv", "tuning", "rate"}
        Similarity measure (see :func:`drift_curve`).
    bins : None, int or sequence of float
        Elapsed-time bins (see :func:`analyses.elapsed.lag_bins`).
    n_boot : int
        Number of bootstrap resamples (0: no intervals).
    ci : float
        Confidence level of the intervals.
    pool : sequence of str
        Batch dims averaged before fitting and resampled in the bootstrap.
    seed : int
        Seed of the resampling.
    include_zero_lag : bool
        Fit the lag-0 pairs too (similarity 1 by construction; off by default).
    variable : str
        Activity variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.Dataset
        ``tau_d``, ``c_0``, ``c_inf`` over the remaining batch dims; ``tau_d_ci``,
        ``c_0_ci``, ``c_inf_ci`` with an extra dim ``bound`` = (``low``, ``high``);
        ``tau_d_boot`` (extra dim ``boot``); ``curve``, ``fitted`` and ``n_pairs`` over
        ``elapsed``. Attributes: ``measure``, ``ci``, ``n_boot``, ``model``.
    """
    arr = activity(data, variable)
    if measure not in ("pv", "tuning", "rate"):
        raise ValueError(f"measure must be 'pv', 'tuning' or 'rate', got {measure!r}")
    pooled = [d for d in pool if d in arr.dims]
    per_unit = None
    base = _curve(arr, measure, bins, include_zero_lag, None)
    if measure == "tuning":
        # per-unit curves once; the estimate and every resample are (weighted) unit means
        per_unit = _tuning_unit_curves(arr, bins, include_zero_lag)
        base["similarity"] = _unit_mean(per_unit, np.ones(arr.sizes["unit"]))
    curve = _pool(base["similarity"], pooled, {})
    n_pairs = base["n_pairs"].max(pooled) if pooled else base["n_pairs"]
    point = _fit_all(curve, n_pairs)
    rng = np.random.default_rng(seed)
    n_units = arr.sizes["unit"]
    boots = np.full((n_boot,) + point.shape, np.nan)
    for b in range(n_boot):
        wu = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units).astype(float)
        wp = {
            d: np.bincount(rng.integers(0, arr.sizes[d], arr.sizes[d]), minlength=arr.sizes[d])
            for d in pooled
        }
        if per_unit is not None:
            cb = _unit_mean(per_unit, wu)
        else:
            cb = _curve(arr, measure, bins, include_zero_lag, wu)["similarity"]
        boots[b] = _fit_all(_pool(cb, pooled, wp), n_pairs)
    dims = [d for d in curve.transpose(..., "elapsed").dims if d != "elapsed"]
    coords = {d: curve[d] for d in dims if d in curve.coords}
    alpha = (1 - ci) / 2
    with np.errstate(invalid="ignore"):
        lo = np.nanquantile(boots, alpha, axis=0) if n_boot else np.full(point.shape, np.nan)
        hi = np.nanquantile(boots, 1 - alpha, axis=0) if n_boot else np.full(point.shape, np.nan)
    out = xr.Dataset(coords=coords)
    unit_t = arr["time"].attrs.get("units", "")
    for k, name in enumerate(("c_0", "c_inf", "tau_d")):
        attrs = {"units": unit_t if name == "tau_d" else "1"}
        out[name] = xr.DataArray(point[..., k], dims=dims, attrs=attrs)
        out[f"{name}_ci"] = xr.DataArray(
            np.stack([lo[..., k], hi[..., k]], axis=-1), dims=dims + ["bound"], attrs=attrs
        )
    out = out.assign_coords(bound=["low", "high"])
    out["tau_d_boot"] = xr.DataArray(np.moveaxis(boots[..., 2], 0, -1), dims=dims + ["boot"])
    out["curve"] = curve
    out["n_pairs"] = n_pairs
    x = curve["elapsed"].values
    fitted = exp_decay(x, point[..., 0:1], point[..., 1:2], point[..., 2:3])
    out["fitted"] = xr.DataArray(fitted, dims=dims + ["elapsed"], coords={"elapsed": x})
    out.attrs.update(
        measure=measure,
        ci=ci,
        n_boot=n_boot,
        model="c(tau) = c_inf + (c_0 - c_inf) exp(-tau / tau_d)",
    )
    return out


def _unit_mean(per_unit: xr.DataArray, weights: np.ndarray) -> xr.DataArray:
    w = xr.DataArray(weights, dims="unit")
    ok = per_unit.notnull()
    return (per_unit.fillna(0) * w).sum("unit") / (ok * w).sum("unit")


def _tuning_unit_curves(arr, bins, include_zero_lag) -> xr.DataArray:
    """Tuning-curve correlation of every unit as a function of elapsed time."""
    r = tuning_pair(arr, arr)[0]
    r = with_time_coords(r, arr)
    res = by_elapsed_time(r.rename("similarity"), bins=bins, zero_lag=include_zero_lag)
    return res["similarity"].compute()
