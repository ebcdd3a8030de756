"""Drift measures between every pair of times, and their dependence on elapsed time.

Population-vector (PV), tuning-curve and ensemble-rate correlations, the normalised
indices of the drift literature, and an exact split of PV decorrelation into rate and
tuning changes. Inputs are in the project's format (dims ``time``, ``unit``, ``stimulus``
plus batch dims, which are kept); NaN units are handled pairwise (only units finite at
both times enter a pair) and the counts used are returned. Pairwise statistics are masked
matrix products (:mod:`analyses.pairwise`), lazy on dask-backed input.

The exponential fit with bootstrap intervals is in :mod:`analyses.drift_fit` and is
re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from analyses._data import activity, ref_copy, with_time_coords
from analyses._measures import measure_matrix, pv_pair, rate_pair, tuning_pair, unit_rates
from analyses.drift_fit import drift_curve, fit_drift, fit_exponential
from analyses.elapsed import by_elapsed_time
from analyses.pairwise import count, pairwise_sums

__all__ = [
    "pv_correlation",
    "tuning_correlation",
    "ensemble_rate_correlation",
    "normalised_index",
    "rate_change_index",
    "drift_index",
    "decompose_pv_decorrelation",
    "fraction_stable",
    "drift_curve",
    "fit_drift",
    "fit_exponential",
]


def pv_correlation(
    data: xr.Dataset | xr.DataArray,
    per_stimulus: bool = False,
    variable: str = "activity",
) -> xr.Dataset:
    """Population-vector correlation between every pair of times.

    For each stimulus, the Pearson correlation across units of ``activity[t, :, s]`` and
    ``activity[t_ref, :, s]`` over the units finite at both times; then the mean over
    stimuli (NaN-skipping).

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, batch...).
    per_stimulus : bool
        Keep the ``stimulus`` dim instead of averaging.
    variable : str
        Activity variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.Dataset
        ``correlation`` (batch..., [``stimulus``], ``time``, ``time_ref``), dimensionless,
        and ``n_units``: units used (the fewest over stimuli when averaged).
    """
    arr = activity(data, variable)
    r, n = pv_pair(arr, arr)
    n = n.round().astype(np.int64)
    if not per_stimulus:
        r, n = r.mean("stimulus", skipna=True), n.min("stimulus")
    r = with_time_coords(r, arr).assign_attrs(long_name="population-vector correlation", units="1")
    return xr.Dataset({"correlation": r, "n_units": n.assign_attrs(long_name="units used")})


def tuning_correlation(data: xr.Dataset | xr.DataArray, variable: str = "activity") -> xr.Dataset:
    """Tuning-curve correlation of every unit between every pair of times.

    Pearson correlation across stimuli of ``activity[t, u, :]`` and ``activity[t_ref, u, :]``
    (stimuli finite at both times).

    Returns
    -------
    xarray.Dataset
        ``correlation`` (batch..., ``unit``, ``time``, ``time_ref``) and ``n_stimuli``.
        NaN for a unit untracked at either time or with a flat tuning curve.
    """
    arr = activity(data, variable)
    r, n = tuning_pair(arr, arr)
    r = with_time_coords(r, arr).assign_attrs(long_name="tuning-curve correlation", units="1")
    return xr.Dataset({"correlation": r, "n_stimuli": n.assign_attrs(long_name="stimuli used")})


def ensemble_rate_correlation(
    data: xr.Dataset | xr.DataArray, variable: str = "activity"
) -> xr.Dataset:
    """Ensemble rate correlation: Pearson correlation across units of the mean activity
    of each unit over stimuli, between every pair of times.

    Returns
    -------
    xarray.Dataset
        ``correlation`` (batch..., ``time``, ``time_ref``) and ``n_units``.
    """
    arr = activity(data, variable)
    r, n = rate_pair(arr, arr)
    r = with_time_coords(r, arr).assign_attrs(long_name="ensemble rate correlation", units="1")
    n = n.round().astype(np.int64).assign_attrs(long_name="units used")
    return xr.Dataset({"correlation": r, "n_units": n})


def normalised_index(x: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Normalised difference ``(X_t - X_ref) / (X_t + X_ref)`` between every pair of times.

    Parameters
    ----------
    x : xarray.DataArray
        A non-negative quantity with dim ``dim`` (e.g. a unit's mean rate per session).
    dim : str
        The time dim; the result has ``dim`` and ``dim + "_ref"``.

    Returns
    -------
    xarray.DataArray
        Values in [-1, 1]; 0 when unchanged, NaN where ``X_t + X_ref == 0``.
    """
    ref = ref_copy(x, dim)
    den = x + ref
    return ((x - ref) / den.where(den != 0)).assign_attrs(units="1")


def rate_change_index(data: xr.Dataset | xr.DataArray, variable: str = "activity") -> xr.Dataset:
    """Activity-rate difference index of each unit between every pair of times.

    ``(r_t - r_ref) / (r_t + r_ref)`` with ``r`` the unit's mean activity over stimuli
    (meaningful for non-negative activity such as event rates).

    Returns
    -------
    xarray.Dataset
        ``index`` (batch..., ``unit``, ``time``, ``time_ref``) and ``mean_abs_index``, the
        mean of ``|index|`` over the units finite at both times, with ``n_units``.
    """
    arr = activity(data, variable)
    idx = normalised_index(unit_rates(arr), "time").transpose(..., "unit", "time", "time_ref")
    idx = with_time_coords(idx, arr).assign_attrs(long_name="activity rate difference index")
    ok = idx.notnull()
    return xr.Dataset(
        {
            "index": idx,
            "mean_abs_index": abs(idx).mean("unit", skipna=True).assign_attrs(units="1"),
            "n_units": ok.sum("unit").assign_attrs(long_name="units used"),
        }
    )


def drift_index(
    data: xr.Dataset | xr.DataArray, measure: str = "pv", variable: str = "activity"
) -> xr.Dataset:
    """Representational drift index: within- versus between-session similarity.

    Trials of every session are split into two halves (even and odd positions) and
    averaged. ``within(t)`` is the similarity between the two halves of session ``t``;
    ``between(t, t_ref)`` the mean of half A at ``t`` vs half B at ``t_ref`` and the
    reverse, so both have the same trial-noise level. The index is

        RDI(t, t_ref) = (w - b) / (w + b),   w = (within(t) + within(t_ref)) / 2,

    0 without drift and up to 1 when the between-session similarity vanishes.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with a ``trial`` dim of at least 2 trials.
    measure : {"pv", "tuning", "rate"}
        Similarity: PV correlation (mean over stimuli), tuning-curve correlation (mean
        over units) or ensemble rate correlation.
    variable : str
        Activity variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.Dataset
        ``index``, ``between`` (batch..., ``time``, ``time_ref``), ``within``
        (batch..., ``time``).
    """
    arr = activity(data, variable)
    if "trial" not in arr.dims or arr.sizes["trial"] < 2:
        raise ValueError("drift_index needs a 'trial' dim with at least 2 trials")
    n = arr.sizes["trial"]
    half_a = arr.isel(trial=np.arange(0, n, 2)).mean("trial", skipna=True)
    half_b = arr.isel(trial=np.arange(1, n, 2)).mean("trial", skipna=True)
    ab = measure_matrix(half_a, half_b, measure)
    ba = ab.rename(time="time_ref", time_ref="time").transpose(*ab.dims)
    between = with_time_coords((ab + ba) / 2, arr)
    within = xr.DataArray(
        np.diagonal(ab.transpose(..., "time", "time_ref").values, axis1=-2, axis2=-1),
        dims=[d for d in ab.transpose(..., "time", "time_ref").dims if d != "time_ref"],
    )
    within = with_time_coords(within, arr)
    w = (within + ref_copy(within, "time")) / 2
    index = (w - between) / (w + between)
    return xr.Dataset(
        {
            "index": index.transpose(*between.dims).assign_attrs(
                long_name="representational drift index", units="1"
            ),
            "between": between.assign_attrs(long_name=f"between-session similarity ({measure})"),
            "within": within.assign_attrs(long_name=f"within-session similarity ({measure})"),
        },
        attrs={"measure": measure},
    )


def _cov_parts(s: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Covariance and the two variances (per unit used) from pairwise sums."""
    n = s.sel(stat="n", drop=True)
    n = n.where(n >= 2)
    sx, sy = s.sel(stat="sx", drop=True), s.sel(stat="sy", drop=True)
    cov = (s.sel(stat="sxy", drop=True) - sx * sy / n) / n
    vx = (s.sel(stat="sxx", drop=True) - sx**2 / n) / n
    vy = (s.sel(stat="syy", drop=True) - sy**2 / n) / n
    return cov, vx.clip(min=0), vy.clip(min=0)


def decompose_pv_decorrelation(
    data: xr.Dataset | xr.DataArray, variable: str = "activity"
) -> xr.Dataset:
    """Split population-vector decorrelation into rate and tuning changes, exactly.

    Write each unit's response as ``x[t, u, s] = r[t, u] + d[t, u, s]`` with ``r`` the mean
    over stimuli (rate) and ``d`` the tuning deviation. Covariances across units averaged
    over stimuli split without cross terms (the mean of ``d`` over stimuli is 0 for every
    unit)::

        mean_s cov(x_t, x_t') = cov(r_t, r_t') + mean_s cov(d_t, d_t')

    With ``V_t = var(r_t) + mean_s var(d_t)`` the pooled PV correlation is
    ``c = w_r rho_r + w_d rho_d``, where ``rho_r`` is the ensemble rate correlation,
    ``rho_d`` the correlation of the tuning deviations, ``w_r = sqrt(var r_t var r_t' /
    (V_t V_t'))`` and ``w_d`` alike. Hence

        1 - c = w_r (1 - rho_r)  +  w_d (1 - rho_d)  +  (1 - w_r - w_d)
                 rate term          tuning term          variance-share term

    where the last term (>= 0) is non-zero only when the share of variance carried by
    rates changes between the two times. A unit enters a pair when it is finite for every
    stimulus at both times.

    Returns
    -------
    xarray.Dataset
        Over (batch..., ``time``, ``time_ref``): ``pooled_correlation`` (c),
        ``decorrelation`` (1 - c), ``rate_term``, ``tuning_term``, ``share_term``,
        ``rate_correlation`` (rho_r), ``tuning_deviation_correlation`` (rho_d),
        ``rate_weight`` (w_r), ``tuning_weight`` (w_d), ``n_units``.
    """
    arr = activity(data, variable)
    complete = arr.notnull().all("stimulus")
    x = arr.where(complete)
    r = x.mean("stimulus")
    d = x - r
    sr = pairwise_sums(r, ref_copy(r, "time"), "time", "time_ref", "unit", shift="vector")
    sd = pairwise_sums(d, ref_copy(d, "time"), "time", "time_ref", "unit", shift="vector")
    cov_r, vr_x, vr_y = _cov_parts(sr)
    cov_d, vd_x, vd_y = (p.mean("stimulus") for p in _cov_parts(sd))
    vx, vy = vr_x + vd_x, vr_y + vd_y
    norm = np.sqrt(vx * vy)
    norm = norm.where(norm > 0)
    w_r = np.sqrt(vr_x * vr_y) / norm
    w_d = np.sqrt(vd_x * vd_y) / norm
    rho_r = cov_r / np.sqrt((vr_x * vr_y).where(vr_x * vr_y > 0))
    rho_d = cov_d / np.sqrt((vd_x * vd_y).where(vd_x * vd_y > 0))
    c = (cov_r + cov_d) / norm
    out = {
        "pooled_correlation": (c, "pooled population-vector correlation"),
        "decorrelation": (1 - c, "population-vector decorrelation 1 - c"),
        "rate_term": (w_r * (1 - rho_r.fillna(1.0)), "decorrelation from rate changes"),
        "tuning_term": (w_d * (1 - rho_d.fillna(1.0)), "decorrelation from tuning changes"),
        "share_term": (1 - w_r - w_d, "decorrelation from a change of variance share"),
        "rate_correlation": (rho_r, "ensemble rate correlation"),
        "tuning_deviation_correlation": (rho_d, "correlation of tuning deviations"),
        "rate_weight": (w_r, "rate weight"),
        "tuning_weight": (w_d, "tuning weight"),
    }
    ds = xr.Dataset(
        {
            k: with_time_coords(v, arr).assign_attrs(long_name=ln, units="1")
            for k, (v, ln) in out.items()
        }
    )
    ds["n_units"] = count(sr).assign_attrs(long_name="units used")
    return ds


def fraction_stable(
    data: xr.Dataset | xr.DataArray,
    threshold: float = 0.5,
    reference: float | None = None,
    bins: int | Sequence[float] | None = None,
    variable: str = "activity",
) -> xr.Dataset:
    """Fraction of units whose tuning-curve correlation stays above ``threshold``.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, batch...).
    threshold : float
        Tuning-curve correlation a unit must exceed.
    reference : float, optional
        ``None``: over all pairs of times, the fraction of (unit, pair) with correlation
        above threshold, as a function of elapsed time. A time value: the fraction of
        units whose correlation with the session at ``reference`` is above threshold at
        *every* session from ``reference`` up to each later time (a survival curve).
    bins : None, int or sequence of float
        Elapsed-time bins (see :func:`analyses.elapsed.lag_bins`); pairwise mode only.
    variable : str
        Activity variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.Dataset
        ``fraction`` over (batch..., ``elapsed``) and ``n_units`` (units with a finite
        correlation, i.e. tracked and tuned, at that lag).
    """
    arr = activity(data, variable)
    r = tuning_correlation(arr)["correlation"]
    above = (r > threshold).where(r.notnull())
    if reference is None:
        frac = above.mean("unit", skipna=True).rename("fraction")
        res = by_elapsed_time(frac, bins=bins, zero_lag=False)
        n = r.notnull().sum("unit").astype(float).rename("n_units")
        n = by_elapsed_time(n, bins=bins, zero_lag=False)["n_units"]
        res["fraction"].attrs.update(long_name="fraction of stable units", units="1")
        return xr.Dataset(
            {"fraction": res["fraction"], "n_units": n.assign_attrs(long_name="units used")},
            attrs={"threshold": threshold},
        )
    col = above.sel(time_ref=reference, method="nearest", drop=True)
    col = col.where(col.time >= col.time.sel(time=reference, method="nearest"), drop=True)
    # survival: a unit counts at time t when above threshold at every session up to t
    tracked = col.notnull().all("time")
    surv = col.fillna(0).cumprod("time").where(tracked)
    frac = surv.mean("unit", skipna=True)
    t0 = float(col.time[0])
    frac = frac.assign_coords(elapsed=("time", col.time.values - t0)).swap_dims(time="elapsed")
    frac = frac.drop_vars("time")
    return xr.Dataset(
        {
            "fraction": frac.assign_attrs(long_name="fraction of stable units", units="1"),
            "n_units": tracked.sum("unit").assign_attrs(long_name="units tracked throughout"),
        },
        attrs={"threshold": threshold, "reference": reference},
    )
