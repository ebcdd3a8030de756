"""Figures of the drift analyses (matplotlib + seaborn).

Every function returns the :class:`matplotlib.figure.Figure` it drew on and never calls
``plt.show()``; pass ``ax`` to draw into an existing axes. Batch dims left in an input
(e.g. ``member``) are averaged, and line plots show the mean with a band of +-1 standard
error over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analyses.drift_fit import exp_decay

__all__ = [
    "plot_drift_curve",
    "plot_rsm",
    "plot_rsa_matrix",
    "plot_cross_temporal",
    "plot_decoders",
]


def _axes(ax: Axes | None, figsize=(5.0, 3.8)) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def _pick(obj: xr.DataArray | xr.Dataset, names: Sequence[str]) -> xr.DataArray:
    if isinstance(obj, xr.DataArray):
        return obj
    for n in names:
        if n in obj:
            return obj[n]
    raise ValueError(f"expected one of the variables {list(names)}; got {list(obj.data_vars)}")


def _line(ax: Axes, da: xr.DataArray, dim: str, label: str | None, **kw) -> None:
    """Mean over the other dims, with a +-1 s.e.m. band when there are several."""
    rest = [d for d in da.dims if d != dim]
    x = da[dim].values
    if rest:
        m = da.mean(rest, skipna=True)
        n = da.notnull().sum(rest)
        se = da.std(rest, skipna=True, ddof=1) / np.sqrt(n.where(n > 1))
        (h,) = ax.plot(x, m.values, label=label, **kw)
        ax.fill_between(x, (m - se).values, (m + se).values, color=h.get_color(), alpha=0.25, lw=0)
    else:
        ax.plot(x, da.values, label=label, **kw)


def _time_dim(da: xr.DataArray) -> str:
    for d in ("elapsed", "time"):
        if d in da.dims:
            return d
    if da.ndim == 1:
        return da.dims[0]
    raise ValueError(f"no 'elapsed' or 'time' dim in {da.dims}")


def _units(da: xr.DataArray, dim: str) -> str:
    u = da[dim].attrs.get("units") if dim in da.coords else None
    return f" ({u})" if u else ""


def plot_drift_curve(
    curve: xr.DataArray | xr.Dataset,
    fit: xr.Dataset | None = None,
    theory: xr.DataArray | None = None,
    ax: Axes | None = None,
    label: str = "data",
    ylabel: str = "PV correlation",
) -> Figure:
    """Similarity versus elapsed time, with the fitted exponential and a theory line.

    Parameters
    ----------
    curve : xarray.DataArray or xarray.Dataset
        Similarity over ``elapsed`` (e.g. from :func:`analyses.drift_rates.drift_curve`,
        or the ``curve`` of :func:`analyses.drift_rates.fit_drift`); other dims averaged.
    fit : xarray.Dataset, optional
        Output of :func:`analyses.drift_rates.fit_drift`; its curve is drawn on a fine grid
        with ``tau_d`` and its interval in the legend (first element of any batch dim).
    theory : xarray.DataArray, optional
        Theory prediction over elapsed time (dim ``elapsed``, ``time`` or its only dim).
    ax : matplotlib.axes.Axes, optional
    label, ylabel : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax)
    da = _pick(curve, ["similarity", "curve", "correlation"])
    dim = _time_dim(da)
    _line(ax, da, dim, label, marker="o", ms=4, lw=1.2)
    if fit is not None:
        el = fit["elapsed"].values
        grid = np.linspace(0, float(np.nanmax(el)), 200)
        first = {d: 0 for d in fit["tau_d"].dims}
        p = {k: float(fit[k].isel(first)) for k in ("c_0", "c_inf", "tau_d")}
        ci = fit["tau_d_ci"].isel(first).values
        lab = f"fit: $\\tau_d$ = {p['tau_d']:.3g} [{ci[0]:.3g}, {ci[1]:.3g}]"
        ax.plot(grid, exp_decay(grid, p["c_0"], p["c_inf"], p["tau_d"]), "k-", lw=1.5, label=lab)
        ax.axhline(p["c_inf"], color="k", ls=":", lw=0.8)
    if theory is not None:
        td = _time_dim(theory)
        _line(ax, theory, td, "theory", color="C3", ls="--", lw=1.5)
    ax.set_xlabel("elapsed time" + _units(da, dim))
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize="small")
    sns.despine(ax=ax)
    return fig


def plot_rsm(
    rsm: xr.DataArray | xr.Dataset,
    times: Sequence[float] | None = None,
    ncols: int = 4,
    cmap: str = "vlag",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """RSM panels at chosen times.

    Parameters
    ----------
    rsm : xarray.DataArray or xarray.Dataset
        Output of :func:`analyses.similarity.rsm` (dims ``time``, ``stimulus``,
        ``stimulus_ref``; other dims averaged).
    times : sequence of float, optional
        Times to show (nearest available); default up to ``ncols`` evenly spaced times.
    ncols : int
        Panels per row.
    cmap, vmin, vmax
        Colour map and limits (default: symmetric around 0 for similarities).

    Returns
    -------
    matplotlib.figure.Figure
    """
    da = _pick(rsm, ["rsm"])
    rest = [d for d in da.dims if d not in ("time", "stimulus", "stimulus_ref")]
    if rest:
        da = da.mean(rest, skipna=True)
    if times is None:
        k = min(ncols, da.sizes["time"])
        sel = da.isel(time=np.unique(np.linspace(0, da.sizes["time"] - 1, k).round().astype(int)))
    else:
        sel = da.sel(time=list(times), method="nearest")
    n = sel.sizes["time"]
    nc = min(ncols, n)
    nr = int(np.ceil(n / nc))
    fig, axes = plt.subplots(
        nr, nc, figsize=(2.6 * nc + 0.8, 2.5 * nr), squeeze=False, layout="constrained"
    )
    vals = sel.values
    if vmin is None and vmax is None:
        lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
        dissim = isinstance(rsm, xr.Dataset) and rsm.attrs.get("dissimilarity", 0)
        vmin, vmax = (0.0, lim) if dissim or np.nanmin(vals) >= 0 else (-lim, lim)
    tunits = _units(sel, "time")
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_axis_off()
            continue
        sns.heatmap(
            vals[k],
            ax=ax,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            square=True,
            cbar=k == n - 1,
            xticklabels=False,
            yticklabels=False,
        )
        ax.set_title(f"t = {float(sel['time'][k]):.3g}{tunits}", fontsize="small")
        ax.set_xlabel("stimulus")
        ax.set_ylabel("stimulus" if k % nc == 0 else "")
    return fig


def _heatmap(
    da: xr.DataArray,
    ax: Axes | None,
    cbar_label: str,
    cmap: str,
    vmin: float | None,
    vmax: float | None,
    xlabel: str,
    ylabel: str,
) -> Figure:
    rest = [d for d in da.dims if d not in ("time", "time_ref")]
    if rest:
        da = da.mean(rest, skipna=True)
    da = da.transpose("time", "time_ref")
    fig, ax = _axes(ax, figsize=(5.0, 4.2))

    def fmt(v):
        step = max(1, len(v) // 10)
        return [f"{x:.3g}" if k % step == 0 else "" for k, x in enumerate(v)]

    sns.heatmap(
        da.values,
        ax=ax,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        square=True,
        xticklabels=fmt(da["time_ref"].values),
        yticklabels=fmt(da["time"].values),
        cbar_kws={"label": cbar_label},
    )
    ax.invert_yaxis()
    tu = _units(da, "time")
    ax.set_xlabel(xlabel + tu)
    ax.set_ylabel(ylabel + tu)
    return fig


def plot_rsa_matrix(
    rsa: xr.DataArray | xr.Dataset,
    ax: Axes | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = 1.0,
) -> Figure:
    """RSA stability matrix (time x time) as a heatmap.

    Parameters
    ----------
    rsa : xarray.DataArray or xarray.Dataset
        Output of :func:`analyses.similarity.rsa` (or any (``time``, ``time_ref``) matrix,
        e.g. CKA or PV correlation); other dims averaged.
    ax : matplotlib.axes.Axes, optional
    cmap, vmin, vmax
        Colour map and limits.

    Returns
    -------
    matplotlib.figure.Figure
    """
    da = _pick(rsa, ["rsa", "cka", "correlation", "distance"])
    label = da.attrs.get("long_name", da.name or "similarity")
    return _heatmap(da, ax, label, cmap, vmin, vmax, "time", "time")


def plot_cross_temporal(
    decoding: xr.DataArray | xr.Dataset,
    ax: Axes | None = None,
    cmap: str = "magma",
    vmin: float | None = None,
    vmax: float | None = 1.0,
) -> Figure:
    """Cross-temporal decoding accuracy: test time (rows) versus training time (columns).

    Parameters
    ----------
    decoding : xarray.DataArray or xarray.Dataset
        Output of :func:`analyses.readout.cross_temporal_decoding` or
        :func:`analyses.readout.template_matching`; other dims averaged. ``vmin``
        defaults to the ``chance`` attribute when present.
    ax : matplotlib.axes.Axes, optional
    cmap, vmin, vmax
        Colour map and limits.

    Returns
    -------
    matplotlib.figure.Figure
    """
    da = _pick(decoding, ["accuracy"])
    if vmin is None and isinstance(decoding, xr.Dataset):
        vmin = decoding.attrs.get("chance")
    return _heatmap(da, ax, "accuracy", cmap, vmin, vmax, "training time", "test time")


def plot_decoders(
    fixed: xr.DataArray | xr.Dataset,
    retrained: xr.DataArray | xr.Dataset | None = None,
    theory: xr.DataArray | None = None,
    chance: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Fixed versus retrained decoder accuracy over time, with an optional theory curve.

    Parameters
    ----------
    fixed : xarray.DataArray or xarray.Dataset
        Output of :func:`analyses.readout.fixed_decoder` (accuracy over ``time``).
    retrained : xarray.DataArray or xarray.Dataset, optional
        Output of :func:`analyses.readout.retrained_decoder`.
    theory : xarray.DataArray, optional
        Predicted accuracy of the fixed decoder over ``time`` (or its only dim).
    chance : float, optional
        Chance level line; default the ``chance`` attribute of ``fixed``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax)
    fa = _pick(fixed, ["accuracy"])
    _line(ax, fa, "time", "fixed decoder", marker="o", ms=4)
    if "time_ref" in fa.coords and fa["time_ref"].ndim == 0:
        ax.axvline(float(fa["time_ref"]), color="0.6", lw=0.8, ls=":")
    if retrained is not None:
        _line(ax, _pick(retrained, ["accuracy"]), "time", "retrained decoder", marker="s", ms=4)
    if theory is not None:
        _line(ax, theory, _time_dim(theory), "theory (fixed)", color="C3", ls="--")
    if chance is None and isinstance(fixed, xr.Dataset):
        chance = fixed.attrs.get("chance")
    if chance is not None:
        ax.axhline(chance, color="k", lw=0.8, ls="--", label="chance")
    ax.set_xlabel("time" + _units(fa, "time"))
    ax.set_ylabel("accuracy")
    ax.legend(frameon=False, fontsize="small")
    sns.despine(ax=ax)
    return fig


def plot_theory_beside_data(
    beside: xr.Dataset,
    stimuli: Sequence[int] | None = None,
    max_stimuli: int = 4,
) -> Figure:
    """Measurements beside the NDK predictions (:func:`analyses.theory.theory_beside_data`).

    Three panels: the mean output of a few stimuli over time (markers +-1 SE over members,
    theory as lines); the two-time autocorrelation of each layer averaged over stimuli
    (error bars: the mean of the stimuli's SEs, an upper bound on the SE of the average);
    and the distribution of every z-score against the standard normal density.

    Parameters
    ----------
    beside : xarray.Dataset
        Output of :func:`analyses.theory.theory_beside_data`.
    stimuli : sequence of int, optional
        Stimuli drawn in the first panel (default: the first ``max_stimuli``).
    max_stimuli : int
        Number of stimuli drawn by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    with sns.axes_style("ticks"):
        fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8), layout="constrained")
    t = beside["time"].values
    tu = _units(beside, "time")
    positive = t[t > 0]
    lin = float(positive.min()) if positive.size else 1.0
    ax = axes[0]
    sel = list(beside["stimulus"].values[:max_stimuli]) if stimuli is None else list(stimuli)
    for k, s in enumerate(sel):
        b = beside.sel(stimulus=s)
        color = f"C{k % 10}"
        ax.errorbar(t, b["output_measured"], yerr=b["output_se"], fmt="o", ms=3.5,
                    color=color, elinewidth=0.8, label=f"stimulus {s} ({str(b['split'].values)})")
        ax.plot(t, b["output_theory"], "-", color=color, lw=1.2)
    ax.plot([], [], "k-", lw=1.2, label="NDK theory")
    ax.set_ylabel("mean output f(x, t)")
    ax.set_title("ensemble-mean output", fontsize="medium")
    ax = axes[1]
    for k, layer in enumerate(beside["layer"].values):
        b = beside.sel(layer=layer)
        color = f"C{k % 10}"
        ax.errorbar(t, b["autocorrelation_measured"].mean("stimulus"),
                    yerr=b["autocorrelation_se"].mean("stimulus"), fmt="o", ms=3.5,
                    color=color, elinewidth=0.8, label=f"layer {layer}")
        ax.plot(t, b["autocorrelation_theory"].mean("stimulus"), "-", color=color, lw=1.2)
    ax.plot([], [], "k-", lw=1.2, label="NDK theory")
    t_ref = beside.attrs.get("reference_time", float(t[0]))
    ax.set_ylabel(f"Sig(x, t; x, t_ref = {t_ref:.3g})")
    ax.set_title("two-time autocorrelation (mean over stimuli)", fontsize="medium")
    for ax in axes[:2]:
        ax.set_xscale("symlog", linthresh=lin)
        ax.set_xlabel("time" + tu)
        ax.legend(frameon=False, fontsize="small")
        sns.despine(ax=ax)
    ax = axes[2]
    quantities = [str(q) for q in beside["quantity"].values] if "quantity" in beside.coords \
        else ["output", "kernel", "same_time_kernel"]
    edges = np.linspace(-6.0, 6.0, 49)
    for k, q in enumerate(quantities):
        z = beside[f"{q}_z"].values.ravel()
        z = z[np.isfinite(z)]
        ax.hist(np.clip(z, edges[0], edges[-1]), bins=edges, density=True, histtype="step",
                color=f"C{k % 10}", lw=1.3, label=f"{q} (max |z| {np.abs(z).max():.2g})")
    grid = np.linspace(edges[0], edges[-1], 300)
    ax.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), "k--", lw=1, label="N(0, 1)")
    ax.set_xlabel("z = (measured - theory) / SE")
    ax.set_ylabel("density")
    ax.set_title("discrepancy in standard errors over members", fontsize="medium")
    ax.legend(frameon=False, fontsize="x-small", loc="upper left")
    sns.despine(ax=ax)
    return fig


__all__ += ["plot_theory_beside_data"]
