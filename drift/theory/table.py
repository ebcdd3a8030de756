"""Time-dependent kernels as interpolants in the prior correlation (the solver's engine).

Every two-time kernel between ``(x, t)`` and ``(x', t')`` is a function of
``a = m(t, t)``, ``b = m(t', t')`` and ``c = m(t, t')`` only (THEORY.md section 4).
Rather than running the layer recursion for each of the ``n^2`` pairs of a time grid,
:class:`KernelTable` evaluates it once on a small tensor grid of Chebyshev-Lobatto nodes
in ``(a, b, w)`` with ``w = sqrt(1 - c / sqrt(a b))`` and interpolates (barycentric
Lagrange). The variable ``w`` removes the square-root behaviour of ReLU-type kernels at
equal times (``arccos(1 - w^2)`` is analytic in ``w``), so the interpolant converges
spectrally. For positively homogeneous activations (ReLU, linear) the dependence on
``a`` and ``b`` is an exact power law, ``K(a, b, c) = (a b)^(e/2) K(1, 1, c / sqrt(a b))``
with a known exponent ``e`` per kernel, and only the ``w`` direction is tabulated.
When ``sigma02 = sigma2`` (or ``T = 0``) ``a`` and ``b`` never change and again only
``w`` is tabulated.

The number of nodes grows until the interpolant matches the exact recursion at sample
points to a relative tolerance (default 1e-9); the achieved error is kept in
``KernelTable.interpolation_error``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drift.theory.activations import get_activation
from drift.theory.kernels import KernelStack, kernel_stack

__all__ = ["KernelTable", "component", "component_exponent", "lobatto_nodes", "lagrange_basis"]


def component(stack: KernelStack, name: str) -> np.ndarray:
    """One kernel of a :class:`KernelStack` by name.

    Names: ``G_f`` (tangent kernel), ``C`` (two-time NNGP), ``Sig_l`` and ``Sigd_l``
    (layer l), ``SigdG_L`` (``Sigd_L * G_L``, the frozen-readout hidden-weight term).
    """
    if name == "G_f":
        return stack.g_f
    if name == "C":
        return stack.nngp
    if name == "SigdG_L":
        return stack.sigd[-1] * stack.tangent[-1]
    kind, _, layer = name.partition("_")
    if kind in ("Sig", "Sigd") and layer.isdigit() and 1 <= int(layer) <= len(stack.sig):
        layer = int(layer)
        return stack.sig[layer - 1].cross if kind == "Sig" else stack.sigd[layer - 1]
    raise ValueError(f"unknown kernel component {name!r}")


def component_exponent(name: str, depth: int) -> int:
    """Homogeneity exponent ``e`` of a component: ``K(a,b,c) = (ab)^(e/2) K(1,1,r)``."""
    if name == "G_f":
        return depth
    if name == "C":
        return depth + 1
    if name == "SigdG_L":
        return depth - 1
    kind, _, layer = name.partition("_")
    return int(layer) if kind == "Sig" else 0


def lobatto_nodes(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev-Lobatto nodes on [lo, hi] and their barycentric weights.

    Returns ``(nodes, weights)`` of length ``n`` (a single node at ``lo`` when
    ``n == 1`` or ``hi == lo``).
    """
    if n <= 1 or hi <= lo:
        return np.array([lo], float), np.array([1.0])
    k = np.arange(n)
    nodes = 0.5 * (lo + hi) - 0.5 * (hi - lo) * np.cos(np.pi * k / (n - 1))
    w = (-1.0) ** k
    w[0] *= 0.5
    w[-1] *= 0.5
    return nodes, w


def lagrange_basis(nodes: np.ndarray, weights: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Barycentric Lagrange basis ``l_k(y)``, shape ``y.shape + (len(nodes),)``."""
    y = np.asarray(y, float)
    if len(nodes) == 1:
        return np.ones(y.shape + (1,))
    diff = y[..., None] - nodes
    exact = diff == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = weights / diff
        basis = terms / terms.sum(axis=-1, keepdims=True)
    hit = exact.any(axis=-1)
    if np.any(hit):
        basis[hit] = exact[hit].astype(float)
    return basis


@dataclass
class _Axis:
    nodes: np.ndarray
    weights: np.ndarray

    def basis(self, y) -> np.ndarray:
        return lagrange_basis(self.nodes, self.weights, y)


class KernelTable:
    """Interpolants of named kernel components between two fixed point sets.

    Parameters
    ----------
    x_rows : ndarray, shape (P1, N0)
        Points at the later time ``t``.
    x_cols : ndarray, shape (P2, N0)
        Points at the earlier time ``t'``.
    components : sequence of str
        Kernel names, see :func:`component`.
    depth, activation
        The network.
    a_range : (float, float)
        Range of ``m(t, t)`` met by the caller.
    w_max : float
        Largest ``w = sqrt(1 - c / sqrt(ab))`` met by the caller (in [0, 1]).
    tol : float
        Relative interpolation tolerance (against the largest entry of each component).
    """

    def __init__(self, x_rows, x_cols, components, *, depth, activation, a_range, w_max,
                 tol: float = 1e-9, n_w: int = 9, n_a: int = 5, max_nodes: int = 257):
        self.x_rows = np.asarray(x_rows, float)
        self.x_cols = np.asarray(x_cols, float)
        self.components = tuple(components)
        self.depth = depth
        self.act = get_activation(activation)
        self.homogeneous = self.act.homogeneous
        lo, hi = float(min(a_range)), float(max(a_range))
        self.a_lo, self.a_hi = lo, hi
        self.a_varies = (not self.homogeneous) and hi > lo * (1 + 1e-14)
        self.w_max = float(np.clip(w_max, 0.0, 1.0))
        # quadrature-based expectations carry ~1e-8 noise; ask no more of the interpolant
        self.tol = tol if self.act.pair is not None else max(tol, 1e-7)
        tol = self.tol
        self.exponents = {c: component_exponent(c, depth) for c in self.components}
        n_w = n_w if self.w_max > 0 else 1
        n_a = n_a if self.a_varies else 1
        self.interpolation_error = np.inf
        rng = np.random.default_rng(0)
        samples = self._samples(rng)
        while True:
            self._build(n_w, n_a)
            err = self._check(samples)
            self.interpolation_error = err
            grow_w = self.w_max > 0 and n_w < max_nodes
            grow_a = self.a_varies and n_a < max_nodes
            if err <= tol or not (grow_w or grow_a):
                break
            n_w = 2 * n_w - 1 if grow_w else n_w
            n_a = 2 * n_a - 1 if grow_a else n_a

    # -- construction -------------------------------------------------------------------
    def _abc(self, a, b, w):
        a, b, w = np.broadcast_arrays(*(np.asarray(v, float) for v in (a, b, w)))
        return a, b, np.sqrt(a * b) * (1.0 - w**2)

    def _exact(self, a, b, w) -> dict[str, np.ndarray]:
        a, b, c = self._abc(a, b, w)
        st = kernel_stack(self.x_rows, self.x_cols, a, b, c, depth=self.depth,
                          activation=self.act)
        return {name: component(st, name) for name in self.components}

    def _build(self, n_w: int, n_a: int) -> None:
        self.w_axis = _Axis(*lobatto_nodes(0.0, self.w_max, n_w))
        if self.homogeneous:
            self.a_axis = _Axis(np.array([1.0]), np.array([1.0]))
        else:
            self.a_axis = _Axis(*lobatto_nodes(self.a_lo, self.a_hi, n_a if self.a_varies else 1))
        an = self.a_axis.nodes
        aa, bb, ww = np.meshgrid(an, an, self.w_axis.nodes, indexing="ij")
        tables = self._exact(aa, bb, ww)  # each (Ma, Mb, Mw, P1, P2)
        self.tables = tables
        self.n_a, self.n_w = len(an), len(self.w_axis.nodes)

    def _samples(self, rng):
        n = 12
        w = rng.uniform(0, self.w_max, n)
        w[:2] = [0.0, self.w_max]
        if self.a_varies:
            a = rng.uniform(self.a_lo, self.a_hi, n)
            b = rng.uniform(self.a_lo, self.a_hi, n)
        elif self.homogeneous:  # also checks the exact power law in a and b
            a = rng.uniform(0.5, 1.5, n)
            b = rng.uniform(0.5, 1.5, n)
        else:
            a = b = np.full(n, self.a_lo)
        return a, b, w

    def _check(self, samples) -> float:
        a, b, w = samples
        exact = self._exact(a, b, w)
        worst = 0.0
        for name in self.components:
            approx = np.stack([self.evaluate(name, a[k], b[k], w[k]) for k in range(len(a))])
            scale = max(np.max(np.abs(exact[name])), 1e-300)
            worst = max(worst, float(np.max(np.abs(approx - exact[name])) / scale))
        return worst

    # -- evaluation ---------------------------------------------------------------------
    def scale(self, name: str, a) -> np.ndarray:
        """Row or column scale factor ``a^(e/2)`` (1 for non-homogeneous activations)."""
        a = np.asarray(a, float)
        if not self.homogeneous:
            return np.ones_like(a)
        return a ** (0.5 * self.exponents[name])

    def row_table(self, name: str, a_row: float) -> np.ndarray:
        """Table contracted over the row variable: shape ``(Mb * Mw, P1, P2)``.

        Includes the homogeneous row scale ``a_row^(e/2)``.
        """
        t = self.tables[name]
        if self.n_a == 1:
            out = t[0]
        else:
            out = np.tensordot(self.a_axis.basis(a_row), t, axes=(0, 0))
        out = out.reshape((-1,) + out.shape[-2:])
        return out * self.scale(name, a_row)

    def col_weights(self, name: str, b_cols, w) -> np.ndarray:
        """Interpolation weights over (b, w) nodes for columns: shape ``(Mb * Mw, n)``.

        Includes the homogeneous column scale ``b^(e/2)``.
        """
        b_cols = np.asarray(b_cols, float)
        lw = self.w_axis.basis(np.clip(w, 0.0, self.w_max))  # (n, Mw)
        if self.n_a == 1:
            out = lw.T
        else:
            lb = self.a_axis.basis(b_cols)  # (n, Mb)
            out = (lb[:, :, None] * lw[:, None, :]).reshape(len(b_cols), -1).T
        return out * self.scale(name, b_cols)

    def evaluate(self, name: str, a: float, b: float, w: float) -> np.ndarray:
        """Interpolated kernel at one ``(a, b, w)``, shape (P1, P2)."""
        row = self.row_table(name, a)
        col = self.col_weights(name, np.array([b]), np.array([w]))[:, 0]
        return np.tensordot(col, row, axes=(0, 0))


def w_of(a, b, c) -> np.ndarray:
    """``w = sqrt(1 - c / sqrt(a b))`` clipped to [0, 1]."""
    r = np.asarray(c, float) / np.sqrt(np.asarray(a, float) * np.asarray(b, float))
    return np.sqrt(np.clip(1.0 - r, 0.0, 1.0))
