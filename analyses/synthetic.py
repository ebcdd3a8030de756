"""Synthetic populations with a known drift process, in the project's format.

Each unit's tuning is a stable part plus an Ornstein-Uhlenbeck (OU) part with time
constant ``tau``; measurement noise is added independently per entry (and trial):

    x[t, u, s] = baseline + sqrt(floor) mu[u, s] + sqrt(1 - floor) z[t, u, s] + noise eps

with ``mu``, ``z`` of unit variance (``z`` stationary, ``corr(z(t), z(t')) =
exp(-|t - t'| / tau)``). Part ``kappa`` of both ``mu`` and ``z`` is a class preference of the
unit times the stimulus' target (``+-1``), so a linear readout of the target is possible.
The expected population-vector correlation at lag ``d`` is then

    c(d) = (floor + (1 - floor) exp(-d / tau)) / (1 + noise^2 / n_trials_averaged)

(see :func:`expected_pv_correlation`); the ensemble rate correlation follows the same law.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["ou_population", "expected_pv_correlation"]


def expected_pv_correlation(
    elapsed: np.ndarray, tau: float, floor: float, noise: float, n_trials: int = 1
) -> np.ndarray:
    """Expected PV correlation of :func:`ou_population` data at lag ``elapsed`` (> 0).

    ``n_trials``: trials averaged before correlating (noise variance divided by it).
    """
    e = np.asarray(elapsed, dtype=float)
    return (floor + (1 - floor) * np.exp(-e / tau)) / (1 + noise**2 / n_trials)


def _field(rng, shape, target, kappa):
    """Unit-variance field over (..., unit, stimulus) with a class part of weight kappa."""
    idio = rng.standard_normal(shape)
    pref = rng.standard_normal(shape[:-1] + (1,))
    return np.sqrt(1 - kappa) * idio + np.sqrt(kappa) * pref * target


def ou_population(
    n_times: int = 10,
    n_units: int = 200,
    n_stimuli: int = 20,
    tau: float = 5.0,
    floor: float = 0.3,
    noise: float = 0.3,
    times: Sequence[float] | np.ndarray | None = None,
    n_members: int | None = None,
    n_trials: int | None = None,
    kappa: float = 0.0,
    baseline: float = 0.0,
    seed: int = 0,
) -> xr.Dataset:
    """Population whose tuning drifts as an OU process with known rate and floor.

    Parameters
    ----------
    n_times, n_units, n_stimuli : int
        Sizes (``n_times`` unused when ``times`` is given).
    tau : float
        OU time constant (days).
    floor : float
        Stable share of the tuning variance, in [0, 1].
    noise : float
        Standard deviation of the measurement noise (tuning variance is 1).
    times : sequence of float, optional
        Session times (days, increasing); default ``0, 1, ..., n_times - 1``.
    n_members : int, optional
        Adds a ``member`` dim of independent populations.
    n_trials : int, optional
        Adds a ``trial`` dim (independent noise per trial).
    kappa : float
        Share of the tuning that is a class preference times the target, in [0, 1].
    baseline : float
        Constant added to all activity (no effect on correlations).
    seed : int
        Random seed.

    Returns
    -------
    xarray.Dataset
        ``activity`` (``time``, [``member``], ``unit``, ``stimulus``, [``trial``]) with the
        coordinates of the project's format; ``target`` alternates +1, -1 over stimuli.
        Attributes ``tau``, ``floor``, ``noise``, ``kappa`` record the truth.
    """
    if not 0 <= floor <= 1 or not 0 <= kappa <= 1:
        raise ValueError("floor and kappa must lie in [0, 1]")
    t = np.arange(n_times, dtype=float) if times is None else np.asarray(times, dtype=float)
    if t.ndim != 1 or np.any(np.diff(t) <= 0):
        raise ValueError("times must be strictly increasing")
    rng = np.random.default_rng(seed)
    target = np.where(np.arange(n_stimuli) % 2 == 0, 1.0, -1.0)
    lead = () if n_members is None else (n_members,)
    shape = lead + (n_units, n_stimuli)
    mu = _field(rng, shape, target, kappa)
    z = np.empty((t.size,) + shape)
    z[0] = _field(rng, shape, target, kappa)
    for k in range(1, t.size):
        a = np.exp(-(t[k] - t[k - 1]) / tau)
        z[k] = a * z[k - 1] + np.sqrt(1 - a * a) * _field(rng, shape, target, kappa)
    signal = baseline + np.sqrt(floor) * mu[None] + np.sqrt(1 - floor) * z
    dims = ["time"] + (["member"] if n_members else []) + ["unit", "stimulus"]
    if n_trials:
        signal = signal[..., None] + noise * rng.standard_normal(signal.shape + (n_trials,))
        dims.append("trial")
    else:
        signal = signal + noise * rng.standard_normal(signal.shape)
    coords = {
        "time": ("time", t, {"units": "days", "long_name": "session time"}),
        "unit": np.arange(n_units),
        "stimulus": np.arange(n_stimuli),
        "split": ("stimulus", np.full(n_stimuli, "all")),
        "target": ("stimulus", target),
    }
    if n_members:
        coords["member"] = np.arange(n_members)
    if n_trials:
        coords["trial"] = np.arange(n_trials)
    act = xr.DataArray(
        signal, dims=dims, coords=coords, attrs={"units": "a.u.", "long_name": "activity"}
    )
    return xr.Dataset(
        {"activity": act},
        attrs={
            "format": "ndk-drift",
            "format_version": 1,
            "kind": "recording",
            "time_units": "days",
            "tau": tau,
            "floor": floor,
            "noise": noise,
            "kappa": kappa,
            "seed": seed,
        },
    )
