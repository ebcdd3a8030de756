"""Argument checks shared by the theory functions: clear ``ValueError`` naming the argument."""

from __future__ import annotations

import numpy as np

__all__ = ["check_depth", "check_variances", "check_inputs", "check_targets", "check_times"]


def check_depth(depth) -> int:
    """``depth`` must be an integer >= 1."""
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1 (got {depth!r})")
    return int(depth)


def check_variances(*, temperature=None, prior_variance=None, init_variance=None) -> None:
    """``T >= 0`` and both variances > 0, all finite."""
    if temperature is not None and (not np.isfinite(temperature) or temperature < 0):
        raise ValueError(f"temperature must be finite and >= 0 (got {temperature!r})")
    for name, v in (("prior_variance", prior_variance), ("init_variance", init_variance)):
        if v is not None and (not np.isfinite(v) or v <= 0):
            raise ValueError(f"{name} must be finite and > 0 (got {v!r})")


def check_inputs(x, name: str, n_features: int | None = None, allow_empty: bool = False
                 ) -> np.ndarray:
    """A finite 2-D float array ``(P, N0)``."""
    try:
        x = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array of shape (P, N0)") from None
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (P, N0) (got shape {x.shape})")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must hold at least one row (got shape {x.shape})")
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature (got shape {x.shape})")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(f"{name} has {x.shape[1]} features but x_train has {n_features}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or inf")
    return x


def check_targets(y, n: int, name: str = "y_train") -> np.ndarray:
    """Finite targets of shape ``(P,)`` matching ``n`` training inputs."""
    y = np.asarray(y, dtype=float)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match x_train (got shape {y.shape})")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} holds NaN or inf")
    return y


def check_times(t, name: str = "times", sorted_: bool = True) -> np.ndarray:
    """Finite, non-negative times (strictly increasing when ``sorted_``)."""
    t = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{name} holds NaN or inf")
    if np.any(t < 0):
        raise ValueError(f"{name} must be >= 0 (got min {t.min()})")
    if sorted_:
        if t.ndim != 1 or t.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array (got shape {t.shape})")
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"{name} must be strictly increasing")
    return t
