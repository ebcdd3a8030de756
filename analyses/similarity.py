"""Representational similarity: RSMs per time, RSA between times, CKA and Procrustes shape.

All functions take activity in the project's format (dims ``time``, ``unit``, ``stimulus``
plus batch dims such as ``member``, ``layer``, ``trial``, which are kept in the results)
and return labelled :class:`xarray.Dataset` objects. Units that are NaN (not tracked) are
handled pairwise: a statistic between two stimuli uses the units finite for both, and the
number used is returned as ``n_units``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import linalg, stats

from analyses._data import activity, ref_copy, with_time_coords
from analyses.pairwise import (
    cosine,
    count,
    linear_kernel,
    pairwise_sums,
    pearson,
    sq_euclidean,
)

__all__ = ["rsm", "rsa", "cka", "procrustes_distance"]

_METRICS = {
    # name: (shift, finishing function, is a dissimilarity)
    "correlation": ("vector", pearson, False),
    "cosine": (None, cosine, False),
    "kernel": (None, linear_kernel, False),
    "euclidean": ("unit", lambda s: np.sqrt(sq_euclidean(s)), True),
    "sqeuclidean": ("unit", sq_euclidean, True),
}


def rsm(
    data: xr.Dataset | xr.DataArray,
    metric: str = "correlation",
    variable: str = "activity",
) -> xr.Dataset:
    """Representational similarity (or dissimilarity) matrix at every time.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, batch...).
    metric : {"correlation", "cosine", "kernel", "euclidean", "sqeuclidean"}
        Between the population vectors of two stimuli (over units):

        * ``"correlation"``: Pearson correlation;
        * ``"cosine"``: cosine similarity;
        * ``"kernel"``: linear kernel with 1/N normalisation, ``(1/N) sum_i r_i(x) r_i(x')``,
          the population kernel of THEORY.md section 6 (N = units used);
        * ``"euclidean"`` / ``"sqeuclidean"``: (squared) Euclidean distance over the
          units used (dissimilarities).
    variable : str
        Activity variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.Dataset
        ``rsm`` with dims (batch..., ``time``, ``stimulus``, ``stimulus_ref``) and
        ``n_units`` (units used per entry), same dims. Lazy when the input is dask-backed.
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
    shift, finish, dissim = _METRICS[metric]
    arr = activity(data, variable)
    s = pairwise_sums(
        arr, ref_copy(arr, "stimulus"), "stimulus", "stimulus_ref", "unit", shift=shift
    )
    out = xr.Dataset(
        {
            "rsm": finish(s).assign_attrs(
                long_name=f"representational {'dis' if dissim else ''}similarity ({metric})",
                units="1" if metric in ("correlation", "cosine") else "",
            ),
            "n_units": count(s).assign_attrs(long_name="units used"),
        }
    )
    out.attrs.update(metric=metric, dissimilarity=int(dissim))
    return out


def _upper(rsm_arr: xr.DataArray) -> xr.DataArray:
    """Off-diagonal upper triangle of an RSM as a ``pair`` dim."""
    n = rsm_arr.sizes["stimulus"]
    iu, ju = np.triu_indices(n, k=1)
    v = rsm_arr.isel(
        stimulus=xr.DataArray(iu, dims="pair"), stimulus_ref=xr.DataArray(ju, dims="pair")
    )
    drop = [c for c in v.coords if "pair" in v[c].dims]
    return v.drop_vars(drop)


def _tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-a from :func:`scipy.stats.kendalltau`.

    scipy computes tau-b with Knight's O(n log n) algorithm; tau-a, which does not
    forgive ties (Nili et al. 2014, the RSA-toolbox choice for models that predict
    ties), follows as ``tau_b * sqrt((n0 - n1) (n0 - n2)) / n0`` with ``n0 = n (n-1)/2``
    and ``n1``, ``n2`` the numbers of tied pairs in ``x`` and ``y``.
    """
    n = x.size
    n0 = n * (n - 1) / 2.0
    if n < 2:
        return np.nan
    ties = []
    for v in (x, y):
        _, counts = np.unique(v, return_counts=True)
        ties.append(float((counts * (counts - 1) / 2.0).sum()))
    if ties[0] == n0 or ties[1] == n0:
        return np.nan
    tau_b = stats.kendalltau(x, y, variant="b").statistic
    return float(tau_b * np.sqrt((n0 - ties[0]) * (n0 - ties[1])) / n0)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return np.nan
    return float(stats.spearmanr(x, y).statistic)


def _pairwise_loop(v: np.ndarray, func) -> tuple[np.ndarray, np.ndarray]:
    """``func`` on the complete entries of every pair of rows; v (..., T, P)."""
    t = v.shape[-2]
    out = np.full(v.shape[:-1] + (t,), np.nan)
    cnt = np.zeros(v.shape[:-1] + (t,))
    ok = np.isfinite(v)
    for idx in np.ndindex(v.shape[:-2]):
        for i in range(t):
            for j in range(i, t):
                m = ok[idx + (i,)] & ok[idx + (j,)]
                val = func(v[idx + (i,)][m], v[idx + (j,)][m])
                out[idx + (i, j)] = out[idx + (j, i)] = val
                cnt[idx + (i, j)] = cnt[idx + (j, i)] = m.sum()
    return out, cnt


def rsa(
    data: xr.Dataset | xr.DataArray,
    method: str = "spearman",
    metric: str = "correlation",
    variable: str = "activity",
) -> xr.Dataset:
    """RSA stability matrix: agreement of the RSMs at every pair of times.

    The off-diagonal upper triangles of the RSMs at times ``t`` and ``t_ref`` are
    compared with a rank or linear correlation, pairs of stimuli that are NaN in either
    RSM being skipped.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity (dims ``time``, ``unit``, ``stimulus``, batch...) or the output of
        :func:`rsm` (its ``rsm`` variable is used).
    method : {"spearman", "pearson", "kendall"}
        ``"pearson"``: vectorised masked products. ``"spearman"``: ranks from
        :func:`scipy.stats.rankdata` then the same products (exact when the NaN pattern is
        the same at every time); otherwise :func:`scipy.stats.spearmanr` pair by pair.
        ``"kendall"``: Kendall tau-a (see :func:`_tau_a`), pair by pair.
    metric : str
        RSM metric when activity is given (see :func:`rsm`).
    variable : str
        Activity variable when ``data`` is an activity Dataset.

    Returns
    -------
    xarray.Dataset
        ``rsa`` with dims (batch..., ``time``, ``time_ref``) and ``n_pairs`` (stimulus
        pairs used). Computed (not lazy) for the rank methods.
    """
    if method not in ("spearman", "pearson", "kendall"):
        raise ValueError(f"method must be 'spearman', 'pearson' or 'kendall', got {method!r}")
    if isinstance(data, xr.Dataset) and "rsm" in data:
        mat = data["rsm"]
    elif isinstance(data, xr.DataArray) and "stimulus_ref" in data.dims:
        mat = data
    else:
        mat = rsm(data, metric=metric, variable=variable)["rsm"]
    v = _upper(mat)
    if method == "pearson":
        s = pairwise_sums(v, ref_copy(v, "time"), "time", "time_ref", "pair", shift="vector")
        r, n = pearson(s), count(s)
    else:
        v = v.transpose(..., "time", "pair").compute()
        vals = v.values
        same = (np.isnan(vals) == np.isnan(vals[..., :1, :])).all()
        if method == "spearman" and same:
            ranks = v.copy(data=stats.rankdata(vals, axis=-1, nan_policy="omit"))
            s = pairwise_sums(
                ranks, ref_copy(ranks, "time"), "time", "time_ref", "pair", shift="vector"
            )
            r, n = pearson(s), count(s)
        else:
            func = _spearman if method == "spearman" else _tau_a
            out, cnt = _pairwise_loop(vals, func)
            ref = ref_copy(v.isel(pair=0, drop=True), "time").rename("x")
            tmpl = (v.isel(pair=0, drop=True) * ref).transpose(..., "time", "time_ref")
            r, n = tmpl.copy(data=out), tmpl.copy(data=cnt.astype(np.int64))
    res = xr.Dataset(
        {
            "rsa": r.assign_attrs(long_name=f"RSA ({method} correlation of RSMs)", units="1"),
            "n_pairs": n.assign_attrs(long_name="stimulus pairs used"),
        }
    )
    res.attrs.update(method=method)
    return res


def _grams(arr: xr.DataArray, kernel: str, sigma: float) -> tuple[xr.DataArray, xr.DataArray]:
    """Gram matrix over stimuli per time (features centred), and units used per time."""
    s = pairwise_sums(
        arr, ref_copy(arr, "stimulus"), "stimulus", "stimulus_ref", "unit", shift="unit"
    )
    n = count(s).min(["stimulus", "stimulus_ref"])
    if kernel == "linear":
        g = linear_kernel(s)
    elif kernel == "rbf":
        d2 = sq_euclidean(s) / s.sel(stat="n", drop=True)
        g = xr.apply_ufunc(
            _rbf,
            d2,
            input_core_dims=[["stimulus", "stimulus_ref"]],
            output_core_dims=[["stimulus", "stimulus_ref"]],
            kwargs={"sigma": sigma},
            dask="parallelized",
            output_dtypes=[float],
        )
    else:
        raise ValueError(f"kernel must be 'linear' or 'rbf', got {kernel!r}")
    return g, n


def _rbf(d2: np.ndarray, sigma: float) -> np.ndarray:
    """RBF Gram ``exp(-d2 / (2 (sigma * median distance)^2))``, median over off-diagonal."""
    s = d2.shape[-1]
    off = ~np.eye(s, dtype=bool)
    med = np.nanmedian(d2[..., off], axis=-1)[..., None, None]
    return np.exp(-d2 / (2.0 * sigma**2 * med))


def _center(k: np.ndarray) -> np.ndarray:
    return (
        k
        - k.mean(-1, keepdims=True)
        - k.mean(-2, keepdims=True)
        + k.mean((-1, -2))[..., None, None]
    )


def _cka_matrix(g: np.ndarray, debiased: bool) -> np.ndarray:
    """CKA between the Grams of every pair of times; g (..., T, S, S) -> (..., T, T)."""
    s = g.shape[-1]
    if debiased:
        if s < 4:
            raise ValueError("the debiased estimator needs at least 4 stimuli")
        kt = g * (1 - np.eye(s))
        flat = kt.reshape(kt.shape[:-2] + (s * s,))
        tr = flat @ np.swapaxes(flat, -1, -2)
        rows = kt.sum(-1)  # (..., T, S)
        tot = rows.sum(-1)  # (..., T)
        cross = rows @ np.swapaxes(rows, -1, -2)
        hsic = (
            tr + tot[..., :, None] * tot[..., None, :] / ((s - 1) * (s - 2)) - 2.0 / (s - 2) * cross
        ) / (s * (s - 3))
    else:
        kc = _center(g)
        flat = kc.reshape(kc.shape[:-2] + (s * s,))
        hsic = flat @ np.swapaxes(flat, -1, -2) / (s - 1) ** 2
    d = np.diagonal(hsic, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return hsic / np.sqrt(d[..., :, None] * d[..., None, :])


def cka(
    data: xr.Dataset | xr.DataArray,
    kernel: str = "linear",
    debiased: bool = False,
    sigma: float = 1.0,
    variable: str = "activity",
) -> xr.Dataset:
    """Centred kernel alignment between the representations at every pair of times.

    ``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with Gram matrices over
    stimuli (Kornblith et al. 2019). Units need not correspond between times; at each
    time the units that are finite are used (NaN-tolerant Grams).

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, batch...), at least 4 stimuli
        for the debiased estimator.
    kernel : {"linear", "rbf"}
        Linear Gram (1/N normalised) or RBF ``exp(-d^2 / (2 (sigma m)^2))`` with ``d`` the
        Euclidean distance per unit and ``m`` the median off-diagonal distance.
    debiased : bool
        Use the unbiased HSIC estimator (Song et al. 2012), which makes CKA of independent
        representations ~0 at finite size.
    sigma : float
        RBF bandwidth as a fraction of the median distance.
    variable : str
        Activity variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.Dataset
        ``cka`` (batch..., ``time``, ``time_ref``) and ``n_units`` (batch..., ``time``),
        the fewest units used by any entry of that time's Gram.
    """
    arr = activity(data, variable)
    g, n = _grams(arr, kernel, sigma)
    t = arr.sizes["time"]
    val = xr.apply_ufunc(
        _cka_matrix,
        g,
        input_core_dims=[["time", "stimulus", "stimulus_ref"]],
        output_core_dims=[["time", "time_ref"]],
        kwargs={"debiased": debiased},
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"allow_rechunk": True, "output_sizes": {"time_ref": t}},
    )
    val = with_time_coords(val, arr)
    name = f"{'debiased ' if debiased else ''}{kernel} CKA"
    return xr.Dataset(
        {
            "cka": val.assign_attrs(long_name=name, units="1"),
            "n_units": n.assign_attrs(long_name="units used"),
        },
        attrs={"kernel": kernel, "debiased": int(debiased)},
    )


def _procrustes_matrix(g: np.ndarray, angular: bool) -> np.ndarray:
    """Shape distance from centred Grams; g (..., T, S, S) -> (..., T, T)."""
    kc = _center(g)
    tr = np.trace(kc, axis1=-2, axis2=-1)[..., None, None]
    kc = kc / tr
    lam, vec = np.linalg.eigh(kc)
    a = vec * np.sqrt(np.clip(lam, 0, None))[..., None, :]  # (..., T, S, S), a a^T = kc
    t = g.shape[-3]
    out = np.full(g.shape[:-2] + (t,), np.nan)
    for idx in np.ndindex(g.shape[:-3]):
        for i in range(t):
            for j in range(i, t):
                ai, aj = a[idx + (i,)], a[idx + (j,)]
                if not (np.all(np.isfinite(ai)) and np.all(np.isfinite(aj))):
                    continue
                nuc = linalg.orthogonal_procrustes(aj, ai)[1]
                nuc = min(nuc, 1.0)
                d = np.arccos(nuc) if angular else np.sqrt(max(2.0 - 2.0 * nuc, 0.0))
                out[idx + (i, j)] = out[idx + (j, i)] = 0.0 if i == j else d
    return out


def procrustes_distance(
    data: xr.Dataset | xr.DataArray,
    kind: str = "angular",
    variable: str = "activity",
) -> xr.Dataset:
    """Orthogonal-Procrustes shape distance between the representations at two times.

    With ``X_t`` the (stimulus x unit) matrix centred over stimuli and scaled to unit
    Frobenius norm, ``nuc = max_Q tr(X_t^T X_s Q) = ||X_t^T X_s||_*`` over orthogonal ``Q``
    (rotations/reflections of unit space). ``kind="euclidean"`` gives
    ``min_Q ||X_t - X_s Q||_F = sqrt(2 - 2 nuc)``; ``"angular"`` gives ``arccos(nuc)``
    (Williams et al. 2021), a metric on shapes. Each ``X_t`` is first replaced by a
    stimulus x stimulus factor of its Gram matrix (same shape up to rotation), so the cost
    does not grow with the number of units; ``nuc`` is the ``scale`` returned by
    :func:`scipy.linalg.orthogonal_procrustes` on these factors. Units need not
    correspond between times; NaN units are dropped per time.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, batch...).
    kind : {"angular", "euclidean"}
        Distance form (radians in [0, pi/2], or in [0, sqrt(2)]).
    variable : str
        Activity variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.Dataset
        ``distance`` (batch..., ``time``, ``time_ref``) and ``n_units`` (batch..., ``time``).
    """
    if kind not in ("angular", "euclidean"):
        raise ValueError(f"kind must be 'angular' or 'euclidean', got {kind!r}")
    arr = activity(data, variable)
    s = pairwise_sums(
        arr, ref_copy(arr, "stimulus"), "stimulus", "stimulus_ref", "unit", shift="unit"
    )
    g = s.sel(stat="sxy", drop=True)
    n = count(s).min(["stimulus", "stimulus_ref"])
    t = arr.sizes["time"]
    val = xr.apply_ufunc(
        _procrustes_matrix,
        g,
        input_core_dims=[["time", "stimulus", "stimulus_ref"]],
        output_core_dims=[["time", "time_ref"]],
        kwargs={"angular": kind == "angular"},
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"allow_rechunk": True, "output_sizes": {"time_ref": t}},
    )
    val = with_time_coords(val, arr)
    units = "rad" if kind == "angular" else "1"
    return xr.Dataset(
        {
            "distance": val.assign_attrs(long_name=f"Procrustes distance ({kind})", units=units),
            "n_units": n.assign_attrs(long_name="units used"),
        },
        attrs={"kind": kind},
    )
