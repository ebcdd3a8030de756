"""Volterra solver for the NDK mean predictor (THEORY.md section 5).

Solves, on the training inputs ``X``,

    g(t) = Y - int_0^t K_d(t, t', X, X) g(t') dt'

by product integration (``g`` piecewise linear, the kernel integrated by Gauss-Legendre
in ``sqrt(t - t')``, see :func:`history_weights`), implicit in the newest time point
(the trapezoidal rule's A-stability, so the stiff NTK modes never blow up), on a grid
that is uniform and fine where the fast modes live (step ``eps_fast / Lambda_max``),
geometric afterwards (step ``eps * t``) and capped at ``eps_slow / lambda`` in the
diffusive phase. The kernel comes from
:class:`~drift.theory.table.KernelTable`, so each step costs a few matrix-vector products
instead of a run of the layer recursion. The numerical error is estimated by solving
again on a grid twice as fine (same requested times) and reporting the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from drift.theory.kernels import kernel_stack
from drift.theory.prior import decay_rate, prior_correlation
from drift.theory.table import KernelTable, w_of

__all__ = ["VolterraSolution", "time_grid", "fastest_rate", "solve_residual", "NDKProblem"]


@dataclass
class NDKProblem:
    """A network, its dynamics and its training set.

    Attributes
    ----------
    x_train : ndarray, shape (P, N0)
    y_train : ndarray, shape (P,)
    depth : int
    activation : str or Activation or callable
    temperature, prior_variance, init_variance : float
    """

    x_train: np.ndarray
    y_train: np.ndarray
    depth: int
    activation: object
    temperature: float
    prior_variance: float
    init_variance: float

    @property
    def lam(self) -> float:
        return decay_rate(self.temperature, self.prior_variance)

    def m(self, t1, t2) -> np.ndarray:
        return prior_correlation(t1, t2, temperature=self.temperature,
                                 prior_variance=self.prior_variance,
                                 init_variance=self.init_variance)

    @property
    def a_range(self) -> tuple[float, float]:
        if self.lam == 0:
            return (self.init_variance, self.init_variance)
        return (min(self.init_variance, self.prior_variance),
                max(self.init_variance, self.prior_variance))

    def table(self, x_rows, components, w_max, tol=1e-9) -> KernelTable:
        return KernelTable(x_rows, self.x_train, components, depth=self.depth,
                           activation=self.activation, a_range=self.a_range, w_max=w_max,
                           tol=tol)


@dataclass
class VolterraSolution:
    """Residual ``g`` on the solver grid.

    Attributes
    ----------
    grid : ndarray, shape (n,)
        Internal time grid (time units of the dynamics), ``grid[0] = 0``.
    residual : ndarray, shape (n, P)
        ``g(t) = Y - fbar(X, t)`` at every grid time.
    weights : ndarray, shape (n,)
        Step lengths ``h_j = grid[j] - grid[j-1]`` (``h_0 = 0``).
    """

    grid: np.ndarray
    residual: np.ndarray
    weights: np.ndarray = field(repr=False)


def fastest_rate(problem: NDKProblem) -> float:
    """Largest eigenvalue of ``K_d(t, t)`` on the training set over the run (1 / time).

    The equal-time NDK is the NTK at weight variance ``m(t, t)``, which moves from
    ``sigma02`` to ``sigma2``; both ends are checked.
    """
    rates = []
    for v in set(problem.a_range):
        st = kernel_stack(problem.x_train, problem.x_train, v, v, v, depth=problem.depth,
                          activation=problem.activation)
        rates.append(float(np.linalg.eigvalsh(0.5 * (st.g_f + st.g_f.T))[-1]))
    return max(rates)


def time_grid(t_end: float, *, fast_rate: float, lam: float, refine: float = 1.0,
              eps_fast: float = 0.1, eps: float = 0.08, eps_slow: float = 0.04,
              include=None) -> np.ndarray:
    """The solver's internal grid on ``[0, t_end]``.

    Parameters
    ----------
    t_end : float
        Last time needed.
    fast_rate : float
        Largest rate of the problem (``Lambda_max``, 1 / time).
    lam : float
        Diffusive rate ``T / sigma2`` (0 for gradient flow).
    refine : float
        Divides every step (2 halves all steps).
    eps_fast, eps, eps_slow : float
        Step as a fraction of ``1 / Lambda_max`` early, of ``t`` in the geometric part,
        and of ``1 / lambda`` at most.
    include : array_like, optional
        Times that must be grid points (the requested output times).

    Returns
    -------
    ndarray, shape (n,)
        Increasing times starting at 0 and ending at ``t_end``.
    """
    h_min = eps_fast / (fast_rate * refine)
    h_max = eps_slow / (lam * refine) if lam > 0 else np.inf
    h_max = max(h_max, h_min)
    ts = [0.0]
    t = 0.0
    growth = eps / refine
    while t < t_end:
        h = min(max(h_min, growth * t), h_max)
        t = t + h
        ts.append(t)
    grid = np.array(ts)
    grid[-1] = t_end
    if include is not None:
        grid = np.union1d(grid, np.asarray(include, float))
    # merge points closer than a tiny fraction of the local step (keep requested ones)
    keep = np.concatenate([[True], np.diff(grid) > 1e-12 * max(t_end, 1.0)])
    return grid[keep]


_GAUSS_X, _GAUSS_W = np.polynomial.legendre.leggauss(3)


def history_weights(problem: NDKProblem, table: KernelTable, name: str, t_row: float,
                    nodes: np.ndarray, factor=None) -> np.ndarray:
    """Product-integration weights of ``int_0^{nodes[-1]} K(t_row, s) g(s) ds``.

    ``g`` is taken piecewise linear between ``nodes`` and the kernel is integrated
    by 3-point Gauss-Legendre on every interval in the variable ``v = sqrt(t_row - s)``,
    in which the kernels are smooth even where ReLU-type kernels have a square-root
    cusp at equal times; the rule is therefore second order in the step.

    Parameters
    ----------
    table : KernelTable
        Interpolant whose columns are the training points.
    name : str
        Kernel component.
    t_row : float
        Time of the row points (>= ``nodes[-1]``).
    nodes : ndarray, shape (k,)
        Grid ``0 = s_0 < ... < s_{k-1}``.
    factor : callable, optional
        Extra scalar factor ``f(s)`` of the integrand (default
        ``exp(-lambda (t_row - s))``, the NDK's OU response).

    Returns
    -------
    ndarray, shape (M, k)
        Contract with the residual ``g(nodes)`` (k, P), then with
        ``table.row_table(name, m(t_row, t_row))``.
    """
    k = nodes.shape[0]
    m_nodes = table.n_w * (table.n_a if table.n_a > 1 else 1)
    if k < 2:
        return np.zeros((m_nodes, k))
    v_hi = np.sqrt(np.maximum(t_row - nodes[:-1], 0.0))  # interval starts (larger v)
    v_lo = np.sqrt(np.maximum(t_row - nodes[1:], 0.0))
    half = 0.5 * (v_hi - v_lo)
    v = (0.5 * (v_hi + v_lo))[:, None] + half[:, None] * _GAUSS_X  # (k-1, 3)
    s = t_row - v**2
    jac = 2.0 * v * half[:, None] * _GAUSS_W  # ds = 2 v dv
    if factor is None:
        fac = np.exp(-problem.lam * (t_row - s))
    else:
        fac = factor(s)
    b = problem.m(s, s)
    w = w_of(problem.m(t_row, t_row), b, problem.m(t_row, s))
    cw = table.col_weights(name, b.ravel(), w.ravel()).reshape(-1, k - 1, 3)
    h = np.diff(nodes)[:, None]
    frac_right = np.where(h > 0, (s - nodes[:-1, None]) / np.where(h > 0, h, 1.0), 0.5)
    base = fac * jac
    right = np.einsum("mjq,jq->mj", cw, base * frac_right)
    left = np.einsum("mjq,jq->mj", cw, base * (1.0 - frac_right))
    out = np.zeros((cw.shape[0], k))
    out[:, 1:] += right
    out[:, :-1] += left
    return out


def solve_residual(problem: NDKProblem, grid: np.ndarray, table: KernelTable,
                   progress=None) -> VolterraSolution:
    """Solve the Volterra equation for ``g`` on ``grid`` (product integration, implicit).

    Parameters
    ----------
    problem : NDKProblem
    grid : ndarray, shape (n,)
    table : KernelTable
        Must hold component ``G_f`` between training points.
    progress : callable, optional
        Called with the number of finished steps.

    Returns
    -------
    VolterraSolution
    """
    y = problem.y_train
    h = np.concatenate([[0.0], np.diff(grid)])
    sol = VolterraSolution(grid, np.zeros((grid.shape[0], y.shape[0])), h)
    sol.residual[0] = y
    with threadpool_limits(limits=1, user_api="blas"):
        _march(problem, grid, table, sol, progress)
    return sol


def _march(problem, grid, table, sol, progress) -> None:
    """Time-march the implicit product-integration scheme (single-threaded BLAS: the
    per-step matrices are small, and threads only add synchronisation cost)."""
    y = problem.y_train
    p = y.shape[0]
    n = grid.shape[0]
    a_grid = problem.m(grid, grid)
    g = sol.residual
    eye = np.eye(p)
    const_rows = table.n_a == 1
    if const_rows:
        base = table.row_table("G_f", 1.0 if table.homogeneous else table.a_lo)
        base_flat = base.transpose(1, 0, 2).reshape(p, -1)
    for i in range(1, n):
        ti = grid[i]
        if const_rows:
            row_scale = float(table.scale("G_f", a_grid[i]))
            rows = base
            rows_flat = base_flat
        else:
            row_scale = 1.0
            rows = table.row_table("G_f", a_grid[i])
            rows_flat = rows.transpose(1, 0, 2).reshape(p, -1)
        cw = history_weights(problem, table, "G_f", ti, grid[: i + 1])  # (M, i+1)
        hist = cw[:, :i] @ g[:i]  # (M, P)
        rhs = y - row_scale * (rows_flat @ hist.ravel())
        k_ii = row_scale * np.tensordot(cw[:, i], rows, axes=(0, 0))
        g[i] = np.linalg.solve(eye + k_ii, rhs)
        if progress is not None:
            progress(1)


def evaluate_outputs(problem: NDKProblem, sol: VolterraSolution, table: KernelTable,
                     indices) -> np.ndarray:
    """``fbar(x, t_i) = sum_j omega_ij K_d(t_i, t_j, x, X) g_j`` at grid indices.

    Parameters
    ----------
    table : KernelTable
        Component ``G_f`` between the evaluation points (rows) and ``X`` (columns).
    indices : sequence of int
        Grid indices of the requested times.

    Returns
    -------
    ndarray, shape (len(indices), P_rows)
    """
    grid = sol.grid
    a_grid = problem.m(grid, grid)
    out = np.zeros((len(indices), table.x_rows.shape[0]))
    with threadpool_limits(limits=1, user_api="blas"):
        for k, i in enumerate(indices):
            if i > 0:
                cw = history_weights(problem, table, "G_f", grid[i], grid[: i + 1])
                rows = table.row_table("G_f", a_grid[i])
                out[k] = np.einsum("mpq,mq->p", rows, cw @ sol.residual[: i + 1])
    return out
