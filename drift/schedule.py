"""Recording schedules: which times a run records (and the theory is evaluated at)."""

from __future__ import annotations

import numpy as np

__all__ = ["snapshot_times"]


def snapshot_times(
    duration: float,
    *,
    n_times: int = 200,
    times: list[float] | np.ndarray | None = None,
    first_time: float | None = None,
) -> np.ndarray:
    """Snapshot times that see both learning phases.

    Parameters
    ----------
    duration : float
        Last time (time units of the dynamics, > 0).
    n_times : int
        Number of log-spaced nonzero times in ``[first_time, duration]``.
    times : sequence of float, optional
        Explicit times instead (sorted, >= 0); 0 is added when absent.
    first_time : float, optional
        Earliest nonzero time of the log-spaced schedule; default ``duration * 1e-4``.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Strictly increasing times starting at 0. Dense early (the gradient-driven phase
        lives on the NTK time scale) and sparse late (the diffusive phase on ``sigma2/T``).
    """
    if not np.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be finite and > 0 (got {duration})")
    if times is not None:
        t = np.asarray(times, dtype=float).ravel()
        if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ValueError(f"times must be finite and >= 0 (got {t.tolist()})")
        if np.any(np.diff(t) <= 0):
            raise ValueError("times must be strictly increasing")
        if t[0] > 0:
            t = np.concatenate([[0.0], t])
        return t
    if n_times < 1:
        raise ValueError(f"n_times must be >= 1 (got {n_times})")
    t0 = duration * 1e-4 if first_time is None else float(first_time)
    if not 0 < t0 <= duration:
        raise ValueError(f"first_time must lie in (0, duration={duration}] (got {t0})")
    if n_times == 1:
        return np.array([0.0, duration])
    t = np.geomspace(t0, duration, n_times)
    return np.unique(np.concatenate([[0.0], t]))
