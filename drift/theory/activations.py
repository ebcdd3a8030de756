"""Gaussian expectations of activation functions (THEORY.md section 4).

For a centred Gaussian pair ``(u, v)`` with ``Var u = q1``, ``Var v = q2``,
``Cov(u, v) = c`` every kernel recursion needs two numbers::

    E[phi(u) phi(v)]      and      E[phi'(u) phi'(v)]

and the equilibrium floor of the drift autocorrelation needs ``E[phi(u)]``.

ReLU, erf and linear use their closed forms; tanh and any user callable use
two-dimensional Gauss-Hermite quadrature (``numpy.polynomial.hermite_e.hermegauss``,
probabilists' Hermite nodes, chosen because the weight ``exp(-z^2/2)`` is exactly the
standard normal density). Quadrature of a kinked function (ReLU) converges slowly,
so the closed forms are used whenever they exist; the quadrature path reproduces them to
~1e-3 for ReLU and to machine precision for erf (see the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

__all__ = ["Activation", "get_activation", "ACTIVATIONS"]

ArrayFn = Callable[[np.ndarray], np.ndarray]


def _correlation(q1, q2, c):
    denom = np.sqrt(q1 * q2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 0, c / np.where(denom > 0, denom, 1.0), 0.0)
    return np.clip(rho, -1.0, 1.0), denom


def _relu_pair(q1, q2, c):
    rho, s = _correlation(q1, q2, c)
    theta = np.arccos(rho)
    e_pp = s * (np.sqrt(1.0 - rho**2) + (np.pi - theta) * rho) / (2 * np.pi)
    e_dd = (np.pi - theta) / (2 * np.pi)
    return e_pp, e_dd


def _erf_pair(q1, q2, c):
    d1, d2 = 1.0 + 2.0 * q1, 1.0 + 2.0 * q2
    arg = np.clip(2.0 * c / np.sqrt(d1 * d2), -1.0, 1.0)
    e_pp = (2.0 / np.pi) * np.arcsin(arg)
    e_dd = (4.0 / np.pi) / np.sqrt(np.maximum(d1 * d2 - 4.0 * c**2, 1e-300))
    return e_pp, e_dd


def _linear_pair(q1, q2, c):
    c = np.asarray(c, dtype=float)
    return c * np.ones(np.broadcast(q1, q2, c).shape), np.ones(np.broadcast(q1, q2, c).shape)


def _relu_mean(q):
    return np.sqrt(np.asarray(q) / (2 * np.pi))


def _zero_mean(q):
    return np.zeros_like(np.asarray(q, dtype=float))


@dataclass(frozen=True)
class Activation:
    """A pointwise nonlinearity and its Gaussian expectations.

    Parameters
    ----------
    name : str
        Label used in datasets and error messages.
    phi : callable
        Vectorised ``phi(z)`` on numpy arrays.
    dphi : callable
        Vectorised derivative ``phi'(z)``.
    pair : callable, optional
        Closed form ``(q1, q2, c) -> (E[phi phi], E[phi' phi'])``; quadrature when None.
    mean : callable, optional
        Closed form ``q -> E[phi(u)]``, ``u ~ N(0, q)``; quadrature when None.
    homogeneous : bool
        True when ``phi(alpha z) = alpha phi(z)`` for every ``alpha > 0`` (ReLU, linear).
        The kernels then depend on the weight variances only through a known scale,
        which the time-domain solver exploits.
    quad_points : int
        Quadrature points per dimension for the quadrature path.
    rule : {"polar", "hermite"}
        Default two-dimensional quadrature rule, see :meth:`quadrature`.
    """

    name: str
    phi: ArrayFn
    dphi: ArrayFn
    pair: Callable | None = None
    mean: Callable | None = None
    homogeneous: bool = False
    quad_points: int = 32
    rule: str = "polar"

    def expectations(self, q1, q2, c) -> tuple[np.ndarray, np.ndarray]:
        """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` broadcast over the inputs."""
        q1, q2, c = np.broadcast_arrays(
            np.asarray(q1, float), np.asarray(q2, float), np.asarray(c, float)
        )
        if self.pair is not None:
            return self.pair(q1, q2, c)
        return self.quadrature(q1, q2, c)

    def quadrature(self, q1, q2, c, rule: str | None = None, chunk: int = 20_000
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Both expectations by two-dimensional quadrature (any activation).

        Writes ``u = sqrt(q1) z1``, ``v = sqrt(q2) (rho z1 + sqrt(1 - rho^2) z2)`` with
        independent standard normal ``z1, z2``.

        Parameters
        ----------
        rule : {"polar", "hermite"}, optional
            ``hermite``: tensor Gauss-Hermite (``quad_points``^2 nodes); spectrally accurate
            for smooth activations, slow (first order) for a kink or jump such as ReLU's.
            ``polar`` (default): ``z = R (cos a, sin a)``, Gauss-Legendre in ``R`` on
            [0, 12] and in ``a`` on the four arcs between the lines ``u = 0`` and ``v = 0``,
            so a kink or jump at zero (ReLU, leaky ReLU, step) costs no accuracy.
        """
        rule = rule or self.rule
        q1, q2, c = np.broadcast_arrays(
            np.asarray(q1, float), np.asarray(q2, float), np.asarray(c, float)
        )
        shape = q1.shape
        rho, _ = _correlation(q1, q2, c)
        flat_q1, flat_q2, flat_rho = (f.ravel() for f in (q1, q2, rho))
        out_pp = np.empty(q1.size)
        out_dd = np.empty(q1.size)
        if rule == "hermite":
            z, w = np.polynomial.hermite_e.hermegauss(self.quad_points)
            w = w / np.sqrt(2 * np.pi)
            z1, z2 = (g.ravel() for g in np.meshgrid(z, z, indexing="ij"))
            ww = np.outer(w, w).ravel()
        elif rule == "polar":
            r_nodes, r_w = np.polynomial.legendre.leggauss(self.quad_points)
            radius = 6.0 * (r_nodes + 1.0)  # [0, 12]
            r_weight = 6.0 * r_w * radius * np.exp(-0.5 * radius**2) / (2 * np.pi)
            a_nodes, a_w = np.polynomial.legendre.leggauss(self.quad_points // 2)
        else:
            raise ValueError(f"rule must be 'polar' or 'hermite' (got {rule!r})")
        n_nodes = self.quad_points**2 * (2 if rule == "polar" else 1)
        step = max(1, chunk // n_nodes)
        for start in range(0, q1.size, step):
            sl = slice(start, start + step)
            a, b, r = (f[sl, None] for f in (flat_q1, flat_q2, flat_rho))
            if rule == "polar":
                z1, z2, ww = _polar_nodes(r[:, 0], radius, r_weight, a_nodes, a_w)
            s = np.sqrt(np.maximum(1 - r**2, 0.0))
            u = np.sqrt(a) * z1
            v = np.sqrt(b) * (r * z1 + s * z2)
            out_pp[sl] = np.sum(self.phi(u) * self.phi(v) * ww, axis=-1)
            out_dd[sl] = np.sum(self.dphi(u) * self.dphi(v) * ww, axis=-1)
        return out_pp.reshape(shape), out_dd.reshape(shape)

    def expected_value(self, q) -> np.ndarray:
        """``E[phi(u)]`` for ``u ~ N(0, q)``."""
        q = np.asarray(q, float)
        if self.mean is not None:
            return self.mean(q)
        x, w = np.polynomial.legendre.leggauss(self.quad_points)
        z = np.concatenate([6.0 * (x - 1.0), 6.0 * (x + 1.0)])  # split at the kink z = 0
        w = np.concatenate([6.0 * w, 6.0 * w]) * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
        return self.phi(np.sqrt(q)[..., None] * z) @ w


def _polar_nodes(rho, radius, r_weight, a_nodes, a_w):
    """Polar quadrature nodes ``(z1, z2, weight)`` per correlation, shape (n, nodes).

    The angular range is split at the lines ``z1 = 0`` (``u = 0``) and
    ``rho z1 + sqrt(1 - rho^2) z2 = 0`` (``v = 0``).
    """
    phi_v = np.arctan2(-rho, np.sqrt(np.maximum(1 - rho**2, 0.0))) % np.pi  # in [0, pi)
    breaks = np.sort(
        np.stack([np.full_like(rho, np.pi / 2), phi_v], axis=-1), axis=-1
    )
    edges = np.concatenate(
        [breaks - np.pi, breaks, breaks[:, :1] + np.pi], axis=-1
    )  # the two lines are four rays: five edges, four arcs covering one full turn
    lo, hi = edges[:, :-1], edges[:, 1:]  # (n, 4)
    half = 0.5 * (hi - lo)
    ang = (lo + half)[..., None] + half[..., None] * a_nodes  # (n, 4, na)
    ang_w = half[..., None] * a_w  # (n, 4, na)
    ang = ang.reshape(len(rho), -1)
    ang_w = ang_w.reshape(len(rho), -1)
    z1 = (np.cos(ang)[..., None] * radius).reshape(len(rho), -1)
    z2 = (np.sin(ang)[..., None] * radius).reshape(len(rho), -1)
    w = (ang_w[..., None] * r_weight).reshape(len(rho), -1)
    return z1, z2, w


def _numerical_derivative(phi: ArrayFn) -> ArrayFn:
    def dphi(z):
        z = np.asarray(z, float)
        h = 1e-6 * (1.0 + np.abs(z))
        return (phi(z + h) - phi(z - h)) / (2 * h)

    return dphi


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(
        "relu",
        lambda z: np.maximum(z, 0.0),
        lambda z: (np.asarray(z) > 0).astype(float),
        pair=_relu_pair,
        mean=_relu_mean,
        homogeneous=True,
    ),
    "erf": Activation(
        "erf",
        erf,
        lambda z: (2 / np.sqrt(np.pi)) * np.exp(-np.asarray(z) ** 2),
        pair=_erf_pair,
        mean=_zero_mean,
    ),
    "linear": Activation(
        "linear",
        lambda z: np.asarray(z, float),
        lambda z: np.ones_like(np.asarray(z, float)),
        pair=_linear_pair,
        mean=_zero_mean,
        homogeneous=True,
    ),
    "tanh": Activation(
        "tanh", np.tanh, lambda z: 1.0 / np.cosh(np.asarray(z)) ** 2, mean=_zero_mean
    ),
}


def get_activation(activation: str | Activation | Callable) -> Activation:
    """Resolve ``activation`` to an :class:`Activation`.

    Parameters
    ----------
    activation : str, Activation or callable
        A name in ``relu, erf, linear, tanh``; an :class:`Activation`; or any vectorised
        numpy callable ``phi`` (its derivative is taken by central differences and its
        expectations by Gauss-Hermite quadrature).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)} or a callable "
                f"(got {activation!r})"
            ) from None
    if callable(activation):
        name = getattr(activation, "__name__", "custom")
        return Activation(name, activation, _numerical_derivative(activation))
    raise ValueError(
        f"activation must be a name, an Activation or a callable (got {type(activation).__name__})"
    )
