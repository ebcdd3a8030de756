"""Two-time kernels of infinitely wide networks (THEORY.md section 4), layer by layer.

Between ``s = (x, t)`` and ``s' = (x', t')`` every kernel depends on the two times only
through three numbers of the prior weight correlation (section 3)::

    a = m(t, t),    b = m(t', t'),    c = m(t, t')

so the recursion below is written in ``(a, b, c)``; :func:`two_time_kernels` maps
times to them. As in neural-tangents' ``stax``, each layer is one small step acting on
a :class:`LayerKernel` (the pre-activation covariance of both point sets and their
cross-covariance): :func:`input_layer`, then ``L`` times :func:`nonlinearity` followed
by :func:`dense`.

Shapes: ``x1 (P1, N0)``, ``x2 (P2, N0)``; ``a, b, c`` broadcast to a batch shape ``S``;
every cross kernel has shape ``S + (P1, P2)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from drift.theory.activations import Activation, get_activation
from drift.theory.prior import decay_rate, prior_correlation
from drift.theory.validation import check_depth, check_inputs, check_times, check_variances

__all__ = [
    "LayerKernel",
    "KernelStack",
    "input_layer",
    "nonlinearity",
    "dense",
    "kernel_stack",
    "two_time_kernels",
    "nngp",
    "ntk",
]


@dataclass
class LayerKernel:
    """Pre-activation covariances ``Q_l`` at one layer.

    Attributes
    ----------
    var1 : ndarray, shape S + (P1,)
        ``Q_l(s, s)`` for the row points (at time t).
    var2 : ndarray, shape S + (P2,)
        ``Q_l(s', s')`` for the column points (at time t').
    cross : ndarray, shape S + (P1, P2)
        ``Q_l(s, s')``.
    """

    var1: np.ndarray
    var2: np.ndarray
    cross: np.ndarray


@dataclass
class KernelStack:
    """All kernels of a depth-``L`` network between two point sets.

    Attributes
    ----------
    sig : list of LayerKernel
        ``Sig_l`` for l = 1..L (post-activation second moments; ``var1``/``var2`` are the
        equal-point values ``Sig_l(s, s)``).
    sigd : list of ndarray, shape S + (P1, P2)
        ``Sigd_l(s, s') = E[phi'(u) phi'(v)]``, l = 1..L.
    tangent : list of ndarray, shape S + (P1, P2)
        ``G_l``, l = 1..L (``G_1 = x . x' / N0``).
    g_f : ndarray, shape S + (P1, P2)
        Tangent kernel of the output, ``G_f``.
    nngp : ndarray, shape S + (P1, P2)
        Two-time NNGP ``C = c Sig_L``.
    """

    sig: list[LayerKernel]
    sigd: list[np.ndarray]
    tangent: list[np.ndarray]
    g_f: np.ndarray
    nngp: np.ndarray


def input_layer(x1: np.ndarray, x2: np.ndarray, a, b, c) -> tuple[LayerKernel, np.ndarray]:
    """First layer: ``Q1 = m (x . x') / N0`` and ``G1 = (x . x') / N0``."""
    n0 = x1.shape[1]
    a, b, c = (np.asarray(v, float)[..., None] for v in (a, b, c))
    gram = x1 @ x2.T / n0
    n1 = np.einsum("ij,ij->i", x1, x1) / n0
    n2 = np.einsum("ij,ij->i", x2, x2) / n0
    q = LayerKernel(a * n1, b * n2, c[..., None] * gram)
    return q, np.broadcast_to(gram, q.cross.shape)


def nonlinearity(act: Activation, q: LayerKernel) -> tuple[LayerKernel, np.ndarray]:
    """``Sig_l`` and ``Sigd_l`` from the pre-activation covariance ``Q_l``."""
    v1, v2 = q.var1[..., :, None], q.var2[..., None, :]
    e_pp, e_dd = act.expectations(v1, v2, q.cross)
    d1, _ = act.expectations(q.var1, q.var1, q.var1)
    d2, _ = act.expectations(q.var2, q.var2, q.var2)
    return LayerKernel(d1, d2, e_pp), e_dd


def dense(sig: LayerKernel, a, b, c) -> LayerKernel:
    """Next pre-activation covariance ``Q(l+1) = m Sig_l``."""
    a, b, c = (np.asarray(v, float)[..., None] for v in (a, b, c))
    return LayerKernel(a * sig.var1, b * sig.var2, c[..., None] * sig.cross)


def kernel_stack(x1: np.ndarray, x2: np.ndarray, a, b, c, *, depth: int,
                 activation: str | Activation | Callable = "relu") -> KernelStack:
    """Run the layer recursion of THEORY.md section 4 in terms of ``(a, b, c)``.

    Parameters
    ----------
    x1 : ndarray, shape (P1, N0)
    x2 : ndarray, shape (P2, N0)
    a, b, c : array_like, broadcast to shape S
        ``m(t, t)``, ``m(t', t')`` and ``m(t, t')``.
    depth : int
        Number of hidden layers ``L``.
    activation : str, Activation or callable

    Returns
    -------
    KernelStack
    """
    act = get_activation(activation)
    a, b, c = np.broadcast_arrays(*(np.asarray(v, float) for v in (a, b, c)))
    q, g = input_layer(x1, x2, a, b, c)
    sigs, sigds, tangents = [], [], [g]
    cc = c[..., None, None]
    for layer in range(1, depth + 1):
        sig, sigd = nonlinearity(act, q)
        sigs.append(sig)
        sigds.append(sigd)
        g_next = sig.cross + cc * sigd * tangents[-1]
        if layer < depth:
            tangents.append(g_next)
            q = dense(sig, a, b, c)
    return KernelStack(sigs, sigds, tangents, g_next, cc * sigs[-1].cross)


def two_time_kernels(
    x1, t1, x2, t2, *, depth: int, activation="relu", temperature: float,
    prior_variance: float, init_variance: float,
) -> dict[str, np.ndarray]:
    """Two-time kernels between ``(X1, t1)`` and ``(X2, t2)``.

    Parameters
    ----------
    x1 : array_like, shape (P1, N0)
    t1 : float or array_like
        Time of the row points (time units of the dynamics, >= 0).
    x2 : array_like, shape (P2, N0)
    t2 : float or array_like
        Time of the column points; broadcast against ``t1`` to a shape S.
    depth, activation
        Network of THEORY.md section 1.
    temperature, prior_variance, init_variance : float
        ``T >= 0``, ``sigma2 > 0``, ``sigma02 > 0``.

    Returns
    -------
    dict of ndarray, each of shape S + (P1, P2)
        ``C`` (two-time NNGP), ``G_f`` (tangent kernel), ``K_d`` (NDK,
        ``exp(-lambda (t1 - t2)) G_f``; defined for ``t1 >= t2``, NaN elsewhere),
        ``Sig_1 .. Sig_L`` (hidden-layer kernels) and ``Sigd_1 .. Sigd_L``.
    """
    check_depth(depth)
    check_variances(temperature=temperature, prior_variance=prior_variance,
                    init_variance=init_variance)
    x1 = check_inputs(x1, "x1")
    x2 = check_inputs(x2, "x2", n_features=x1.shape[1])
    t1 = check_times(t1, "t1", sorted_=False)
    t2 = check_times(t2, "t2", sorted_=False)
    t1, t2 = np.broadcast_arrays(t1, t2)
    kw = dict(temperature=temperature, prior_variance=prior_variance, init_variance=init_variance)
    a = prior_correlation(t1, t1, **kw)
    b = prior_correlation(t2, t2, **kw)
    c = prior_correlation(t1, t2, **kw)
    st = kernel_stack(x1, x2, a, b, c, depth=depth, activation=activation)
    lam = decay_rate(temperature, prior_variance)
    lag = (t1 - t2)[..., None, None]
    with np.errstate(over="ignore", invalid="ignore"):
        k_d = np.where(lag >= 0, np.exp(-lam * np.maximum(lag, 0.0)) * st.g_f, np.nan)
    out = {"C": st.nngp, "G_f": st.g_f, "K_d": k_d}
    for layer, (sig, sigd) in enumerate(zip(st.sig, st.sigd, strict=True), start=1):
        out[f"Sig_{layer}"] = sig.cross
        out[f"Sigd_{layer}"] = sigd
    return out


def _equal_time(x1, x2, depth, activation, variance):
    check_depth(depth)
    if not np.isfinite(variance) or variance <= 0:
        raise ValueError(f"variance must be finite and > 0 (got {variance})")
    x1 = check_inputs(x1, "x1")
    x2 = x1 if x2 is None else check_inputs(x2, "x2", n_features=x1.shape[1])
    return kernel_stack(x1, x2, variance, variance, variance, depth=depth, activation=activation)


def nngp(x1, x2=None, *, depth: int, activation="relu", variance: float = 1.0) -> np.ndarray:
    """Equal-time NNGP kernel ``C(x, x') = sigma^2 Sig_L`` of a network with weight variance.

    Parameters
    ----------
    x1 : array_like, shape (P1, N0)
    x2 : array_like, shape (P2, N0), optional
        Defaults to ``x1``.
    depth : int
        Hidden layers ``L``.
    activation : str, Activation or callable
    variance : float
        Variance of every weight (``sigma02`` at t = 0, ``sigma2`` at equilibrium).

    Returns
    -------
    ndarray, shape (P1, P2)

    Notes
    -----
    Equals neural-tangents' ``stax.serial(Dense(W_std=sqrt(variance)), phi) * L,
    Dense(W_std=sqrt(variance))`` NNGP (no biases, ``parameterization='ntk'``).
    """
    return _equal_time(x1, x2, depth, activation, variance).nngp


def ntk(x1, x2=None, *, depth: int, activation="relu", variance: float = 1.0) -> np.ndarray:
    """Equal-time neural tangent kernel ``G_f`` of this project's parameterisation.

    Same arguments as :func:`nngp`. Gradients are taken with respect to the O(1) weights
    themselves (variance ``variance``), so this NTK equals neural-tangents' NTK divided by
    ``variance`` (they differentiate with respect to unit-variance weights scaled by
    ``W_std``). It is the rate matrix of gradient flow on the summed squared loss:
    ``d f / dt = -NTK (f - y)`` at T = 0.

    Returns
    -------
    ndarray, shape (P1, P2)
    """
    return _equal_time(x1, x2, depth, activation, variance).g_f
