"""Figures of a theory run (and, when given, a simulation beside it).

Every function returns a :class:`matplotlib.figure.Figure` and never calls
``plt.show()``; seaborn sets the style.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
import xarray as xr  # noqa: E402

__all__ = ["plot_output_mean", "plot_errors", "plot_hidden_drift"]


def _phase_lines(ax, ds: xr.Dataset) -> None:
    tg = ds.attrs.get("gradient_time")
    td = ds.attrs.get("diffusive_time")
    if tg and np.isfinite(tg):
        ax.axvline(tg, color="0.5", ls=":", lw=1)
        ax.text(tg, 0.02, " 1/NTK max", transform=ax.get_xaxis_transform(), va="bottom",
                ha="left", fontsize=8, color="0.4")
    if td and np.isfinite(td):
        ax.axvline(td, color="0.5", ls="--", lw=1)
        ax.text(td, 0.02, r" $1/\lambda$", transform=ax.get_xaxis_transform(), va="bottom",
                ha="left", fontsize=8, color="0.4")


def plot_output_mean(theory: xr.Dataset, simulation: xr.Dataset | None = None,
                     n_stimuli: int = 4):
    """Mean output over log time for a few train and test stimuli.

    Parameters
    ----------
    theory : xarray.Dataset
        From :func:`drift.theory_run.theory_from_config` (``output_mean``).
    simulation : xarray.Dataset, optional
        A simulation run (``output`` over time, member, stimulus): its ensemble mean and
        +- 2 standard errors are drawn as points.
    n_stimuli : int
        Stimuli per split to draw.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    palette = sns.color_palette("colorblind", n_stimuli)
    for ax, split in zip(axes, ("train", "test"), strict=True):
        stim = theory["stimulus"].where(theory["split"] == split, drop=True).values[:n_stimuli]
        t = theory["time"].values
        pos = t > 0
        for k, s in enumerate(stim.astype(int)):
            ax.plot(t[pos], theory["output_mean"].sel(stimulus=s).values[pos], color=palette[k],
                    lw=2, label=f"stimulus {s} (NDK)" if k == 0 else None)
            if "posterior_mean" in theory:
                ax.axhline(float(theory["posterior_mean"].sel(stimulus=s)), color=palette[k],
                           ls="--", lw=0.8)
            if simulation is not None and "output" in simulation:
                out = simulation["output"].sel(stimulus=s)
                mean = out.mean("member")
                se = out.std("member") / np.sqrt(out.sizes["member"])
                ts = simulation["time"].values
                keep = ts > 0
                ax.errorbar(ts[keep], mean.values[keep], yerr=2 * se.values[keep], fmt="o",
                            ms=2.5, color=palette[k], alpha=0.6, elinewidth=0.6,
                            label="simulation mean $\\pm$ 2 SE" if k == 0 else None)
        _phase_lines(ax, theory)
        ax.set_xscale("log")
        ax.set_xlabel("time (units of the dynamics)")
        ax.set_title(f"{split} stimuli")
    axes[0].set_ylabel("mean output $\\bar f(x, t)$")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle("Ensemble-mean output: gradient-driven then diffusive phase "
                 "(dashed: equilibrium GP posterior)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_errors(theory: xr.Dataset):
    """Training loss and test error of the mean output over log time."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(6, 4))
    t = theory["time"].values
    pos = t > 0
    ax.plot(t[pos], theory["train_loss"].values[pos],
            label="train loss $\\frac{1}{2}\\sum (f-y)^2$")
    if "test_error" in theory:
        ax.plot(t[pos], theory["test_error"].values[pos], label="test MSE")
    _phase_lines(ax, theory)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time (units of the dynamics)")
    ax.set_ylabel("error (target units$^2$)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_hidden_drift(theory: xr.Dataset):
    """Correlation of each hidden layer's representation with itself at t = 0."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(6, 4))
    t = theory["time"].values
    pos = t > 0
    for layer in theory["layer"].values:
        ax.plot(t[pos], theory["hidden_correlation"].sel(layer=layer).values[pos],
                label=f"layer {layer}")
    _phase_lines(ax, theory)
    ax.set_xscale("log")
    ax.set_xlabel("time (units of the dynamics)")
    ax.set_ylabel("representation correlation with t = 0")
    ax.legend()
    fig.tight_layout()
    return fig
