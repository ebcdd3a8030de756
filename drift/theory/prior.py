"""The prior weight correlation ``m(t, t')`` of THEORY.md section 3."""

from __future__ import annotations

import numpy as np

__all__ = ["decay_rate", "prior_correlation"]


def decay_rate(temperature: float, prior_variance: float) -> float:
    """The diffusive rate ``lambda = T / sigma2`` (1 / time units)."""
    return float(temperature) / float(prior_variance)


def prior_correlation(t1, t2, *, temperature: float, prior_variance: float,
                      init_variance: float) -> np.ndarray:
    """Correlation of one weight at two times under the prior (no data) dynamics.

    ``m(t, t') = sigma2 exp(-lambda |t - t'|) + (sigma02 - sigma2) exp(-lambda (t + t'))``

    Parameters
    ----------
    t1, t2 : array_like
        Times (time units of the dynamics, >= 0); broadcast against each other.
    temperature, prior_variance, init_variance : float
        ``T``, ``sigma2``, ``sigma02``.

    Returns
    -------
    numpy.ndarray
        ``m`` with the broadcast shape of ``t1`` and ``t2``. For ``T = 0`` it is
        ``sigma02`` everywhere (weights keep their initial variance).
    """
    t1 = np.asarray(t1, float)
    t2 = np.asarray(t2, float)
    lam = decay_rate(temperature, prior_variance)
    s2, s02 = float(prior_variance), float(init_variance)
    if lam == 0:  # gradient flow: weights keep their initial variance, exactly
        return np.full(np.broadcast(t1, t2).shape, s02)
    return s2 * np.exp(-lam * np.abs(t1 - t2)) + (s02 - s2) * np.exp(-lam * (t1 + t2))
