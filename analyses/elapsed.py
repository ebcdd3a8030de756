"""Reduce a (time, time_ref) matrix to a function of elapsed time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["by_elapsed_time", "lag_bins"]


def lag_bins(
    times: np.ndarray,
    times_ref: np.ndarray,
    bins: int | Sequence[float] | np.ndarray | None = None,
    lags: str = "absolute",
    zero_lag: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Assign every (time, time_ref) pair to an elapsed-time bin.

    Parameters
    ----------
    times, times_ref : ndarray, shape (T,), (T_ref,)
        Coordinates of the two time dims (same units).
    bins : None, int or sequence of float
        ``None``: one bin per distinct lag (lags equal to 1e-9 relative are merged); suits
        regular schedules. ``int``: that many equal-width bins from 0 to the largest lag.
        Sequence: bin edges (left-closed, the last edge closed too).
    lags : {"absolute", "forward", "backward"}
        Lag is ``time - time_ref``. ``"absolute"`` uses ``|lag|`` and every pair;
        ``"forward"`` only pairs with ``time >= time_ref`` (e.g. testing after training);
        ``"backward"`` only ``time <= time_ref`` (lag ``time_ref - time``).
    zero_lag : bool
        Use the pairs with zero lag (a time with itself).

    Returns
    -------
    index : ndarray of int, shape (T, T_ref)
        Bin of every pair, -1 when the pair is not used.
    centres : ndarray, shape (B,)
        Mean lag of the pairs in each bin (NaN for an empty bin).
    """
    t = np.asarray(times, dtype=float)[:, None]
    tr = np.asarray(times_ref, dtype=float)[None, :]
    raw = t - tr
    if lags == "absolute":
        lag, use = np.abs(raw), np.ones(raw.shape, bool)
    elif lags == "forward":
        lag, use = raw, raw >= 0
    elif lags == "backward":
        lag, use = -raw, raw <= 0
    else:
        raise ValueError(f"lags must be 'absolute', 'forward' or 'backward', got {lags!r}")
    if not zero_lag:
        use = use & (lag != 0)
    scale = max(float(np.max(np.abs(lag[use]))) if use.any() else 1.0, 1e-300)
    if bins is None:
        key = np.round(lag / scale * 1e9)
        uniq = np.unique(key[use])
        index = np.where(use, np.searchsorted(uniq, key), -1)
    else:
        if np.isscalar(bins):
            nb = int(bins)
            if nb < 1:
                raise ValueError("bins must be >= 1")
            edges = np.linspace(0.0, scale, nb + 1)
        else:
            edges = np.asarray(bins, dtype=float)
            if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
                raise ValueError("bin edges must be a strictly increasing 1-d sequence")
        idx = np.searchsorted(edges, lag, side="right") - 1
        idx = np.where(lag == edges[-1], edges.size - 2, idx)
        inside = (idx >= 0) & (idx < edges.size - 1)
        index = np.where(use & inside, idx, -1)
    nbin = int(index.max()) + 1 if (index >= 0).any() else 0
    if bins is not None and not np.isscalar(bins):
        nbin = len(bins) - 1
    elif bins is not None:
        nbin = int(bins)
    centres = np.full(nbin, np.nan)
    for k in range(nbin):
        sel = index == k
        if sel.any():
            centres[k] = lag[sel].mean()
    return index, centres


def by_elapsed_time(
    matrix: xr.DataArray | xr.Dataset,
    bins: int | Sequence[float] | np.ndarray | None = None,
    lags: str = "absolute",
    dims: tuple[str, str] = ("time", "time_ref"),
    zero_lag: bool = True,
    drop_empty: bool = True,
) -> xr.Dataset:
    """Mean of a two-time matrix over the pairs with the same (binned) elapsed time.

    Vectorised as a product with a one-hot (time, time_ref, elapsed) weight array, so
    batch dims are kept and dask arrays stay lazy. NaN entries are skipped.

    Parameters
    ----------
    matrix : xarray.DataArray or xarray.Dataset
        Values with dims ``dims`` (and any batch dims). For a Dataset every variable that
        has both dims is reduced; others are dropped.
    bins, lags
        See :func:`lag_bins`.
    dims : (str, str)
        The two time dims, ``time`` (later / test) and ``time_ref`` (reference / train).
    zero_lag : bool
        Use the pairs of a time with itself (lag 0).
    drop_empty : bool
        Drop bins with no pair.

    Returns
    -------
    xarray.Dataset
        The reduced variables over (batch..., ``elapsed``) (a DataArray input gives a
        variable of its name, ``"value"`` when unnamed), ``n_pairs`` (number of non-NaN
        pairs averaged, per variable when a Dataset is given: ``n_pairs_<name>``) and the
        coordinate ``elapsed`` (mean lag of the bin, units of ``time``).
    """
    d0, d1 = dims
    if isinstance(matrix, xr.DataArray):
        name = matrix.name if matrix.name is not None else "value"
        ds = matrix.to_dataset(name=name)
        single = True
    else:
        ds = matrix
        single = False
    index, centres = lag_bins(ds[d0].values, ds[d1].values, bins, lags, zero_lag)
    onehot = np.zeros(index.shape + (centres.size,))
    i, j = np.nonzero(index >= 0)
    onehot[i, j, index[i, j]] = 1.0
    w = xr.DataArray(onehot, dims=(d0, d1, "elapsed"))
    out = {}
    units = ds[d0].attrs.get("units")
    for name, var in ds.data_vars.items():
        if d0 not in var.dims or d1 not in var.dims:
            continue
        ok = var.notnull()
        total = xr.dot(var.where(ok, 0.0), w, dim=[d0, d1])
        count = xr.dot(ok.astype(float), w, dim=[d0, d1])
        out[name] = (total / count.where(count > 0)).assign_attrs(var.attrs)
        out["n_pairs" if single else f"n_pairs_{name}"] = count
    res = xr.Dataset(out).assign_coords(elapsed=("elapsed", centres))
    res["elapsed"].attrs.update(
        {"long_name": "elapsed time", **({"units": units} if units else {})}
    )
    if drop_empty:
        res = res.isel(elapsed=np.flatnonzero(np.isfinite(centres)))
    res.attrs.update({"lags": lags})
    return res
