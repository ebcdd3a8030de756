"""Predictions of the NDK theory for an ensemble of infinitely wide networks.

THEORY.md sections 5-6: the mean output over time (:func:`mean_predictor`), the
equilibrium GP posterior (:func:`equilibrium_posterior`), the ensemble variance of the
output (:func:`output_variance`), the frozen-readout predictor (:func:`frozen_readout`),
the fixed downstream decoder (:func:`fixed_decoder`), the hidden-layer two-time kernel
(:func:`hidden_kernel`, :func:`hidden_autocorrelation`) and the characteristic time
scales (:func:`time_scales`).

All functions take plain arrays: ``x_train (P, N0)``, ``y_train (P,)``,
``x_test (P_test, N0)``; times in the time units of the dynamics.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import xarray as xr
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from drift.theory.activations import get_activation
from drift.theory.kernels import kernel_stack, ntk, two_time_kernels
from drift.theory.prior import decay_rate, prior_correlation
from drift.theory.solver import (
    NDKProblem,
    evaluate_outputs,
    fastest_rate,
    history_weights,
    solve_residual,
    time_grid,
)
from drift.theory.table import w_of
from drift.theory.validation import (
    check_depth,
    check_inputs,
    check_targets,
    check_times,
    check_variances,
)

__all__ = [
    "mean_predictor",
    "equilibrium_posterior",
    "output_variance",
    "frozen_readout",
    "fixed_decoder",
    "hidden_kernel",
    "hidden_autocorrelation",
    "time_scales",
]


def _activation_name(activation) -> str:
    return get_activation(activation).name


def _problem(x_train, y_train, depth, activation, temperature, prior_variance, init_variance):
    check_depth(depth)
    check_variances(temperature=temperature, prior_variance=prior_variance,
                    init_variance=init_variance)
    get_activation(activation)
    x_train = check_inputs(x_train, "x_train")
    y_train = check_targets(y_train, x_train.shape[0])
    return NDKProblem(x_train, y_train, int(depth), activation, float(temperature),
                      float(prior_variance), float(init_variance))


def _test_inputs(x_test, n_features) -> np.ndarray:
    if x_test is None:
        return np.zeros((0, n_features))
    return check_inputs(x_test, "x_test", n_features=n_features, allow_empty=True)


def _w_max(problem: NDKProblem, grid: np.ndarray) -> float:
    """Largest ``w`` over the pairs ``t_i >= t_j`` of the grid (sampled rows, exact ends)."""
    rows = np.unique(np.concatenate([grid[:: max(1, len(grid) // 64)], grid[-1:]]))
    best = 0.0
    a = problem.m(grid, grid)
    for ti in rows:
        cols = grid[grid <= ti]
        w = w_of(problem.m(ti, ti), a[: len(cols)], problem.m(ti, cols))
        best = max(best, float(w.max()))
    return 0.0 if best < 1e-10 else min(1.0, best * 1.0001)


def _stimulus_coords(y_train, y_test, n_test) -> dict:
    p = y_train.shape[0]
    target = np.concatenate([y_train, y_test if y_test is not None else np.full(n_test, np.nan)])
    return {
        "stimulus": np.arange(p + n_test),
        "split": ("stimulus", np.array(["train"] * p + ["test"] * n_test)),
        "target": ("stimulus", target.astype(float)),
    }


def _bisect(grid: np.ndarray) -> np.ndarray:
    """The grid with every interval halved (a strict refinement)."""
    mid = 0.5 * (grid[1:] + grid[:-1])
    return np.sort(np.concatenate([grid, mid]))


def _solve_on(problem, times, x_eval, grid, progress, label):
    """Mean output at ``times`` (grid points) on train (+ ``x_eval``) for one grid."""
    w_max = _w_max(problem, grid)
    table = problem.table(problem.x_train, ["G_f"], w_max)
    bar = tqdm(total=len(grid) - 1, desc=label, disable=not progress, leave=False)
    sol = solve_residual(problem, grid, table, progress=bar.update)
    bar.close()
    idx = np.searchsorted(grid, times)
    out_train = problem.y_train[None, :] - sol.residual[idx]
    if x_eval.shape[0]:
        tab_eval = problem.table(x_eval, ["G_f"], w_max)
        out_eval = evaluate_outputs(problem, sol, tab_eval, idx)
        interp = max(table.interpolation_error, tab_eval.interpolation_error)
    else:
        out_eval = np.zeros((len(times), 0))
        interp = table.interpolation_error
    return np.concatenate([out_train, out_eval], axis=1), sol, interp


def mean_predictor(
    x_train,
    y_train,
    x_test,
    times,
    *,
    depth: int,
    activation="relu",
    temperature: float,
    prior_variance: float,
    init_variance: float,
    y_test=None,
    refine: float = 1.0,
    progress: bool = False,
) -> xr.Dataset:
    """Ensemble-mean output ``fbar(x, t)`` of infinitely wide Langevin-trained networks.

    Solves the Volterra equation of THEORY.md section 5 for the training residual and
    evaluates test points by quadrature, on an internal grid the solver chooses itself
    (fine on the NTK time scale, geometric later, capped on the ``1 / lambda`` scale), then
    again on a grid twice as fine; the finer answer is returned and the difference is
    its error estimate.

    Parameters
    ----------
    x_train : array_like, shape (P, N0)
    y_train : array_like, shape (P,)
    x_test : array_like, shape (P_test, N0), or None
    times : array_like, shape (n_times,)
        Output times (time units of the dynamics), strictly increasing, >= 0.
    depth : int
        Hidden layers ``L >= 1``.
    activation : str, Activation or callable
        ``relu``, ``erf``, ``linear``, ``tanh`` or any vectorised callable.
    temperature : float
        ``T >= 0``.
    prior_variance : float
        ``sigma2 > 0``.
    init_variance : float
        ``sigma02 > 0``.
    y_test : array_like, shape (P_test,), optional
        Test targets, stored as the ``target`` coordinate.
    refine : float
        Divides every internal step (> 0); 1 meets a 1e-3 error on typical problems.
    progress : bool
        Show a progress bar.

    Returns
    -------
    xarray.Dataset
        ``output_mean (time, stimulus)``, ``output_mean_error (time, stimulus)`` (estimated
        absolute numerical error), ``residual (time, stimulus)`` (``target - output``,
        train only, NaN for test); coordinates ``time``, ``stimulus``, ``split``
        (train then test), ``target``; attrs with the parameters, ``n_grid`` (internal
        grid size), ``error_estimate`` (max over all entries) and ``interpolation_error``.
    """
    problem = _problem(x_train, y_train, depth, activation, temperature, prior_variance,
                       init_variance)
    x_test = _test_inputs(x_test, problem.x_train.shape[1])
    if y_test is not None:
        y_test = check_targets(y_test, x_test.shape[0], "y_test")
    times = check_times(times, "times")
    if not (np.isfinite(refine) and refine > 0):
        raise ValueError(f"refine must be > 0 (got {refine})")
    t_req = times if times[0] == 0 else np.concatenate([[0.0], times])
    grid = time_grid(t_req[-1], fast_rate=fastest_rate(problem), lam=problem.lam,
                     refine=refine, include=t_req)
    coarse, _, _ = _solve_on(problem, t_req, x_test, grid, progress, "NDK (coarse grid)")
    fine, sol, interp = _solve_on(problem, t_req, x_test, _bisect(grid), progress,
                                  "NDK (fine grid)")
    if times[0] != 0:
        coarse, fine = coarse[1:], fine[1:]
    # the difference between the two grids, taken uniformly over stimuli at each time (a
    # per-entry difference can vanish by accident where the two answers cross)
    error = np.broadcast_to(np.abs(fine - coarse).max(axis=1, keepdims=True), fine.shape).copy()
    p = problem.x_train.shape[0]
    resid = np.full_like(fine, np.nan)
    resid[:, :p] = problem.y_train[None, :] - fine[:, :p]
    coords = {"time": times, **_stimulus_coords(problem.y_train, y_test, x_test.shape[0])}
    ds = xr.Dataset(
        {
            "output_mean": (("time", "stimulus"), fine,
                            {"long_name": "ensemble-mean network output", "units": "target units"}),
            "output_mean_error": (("time", "stimulus"), error,
                                  {"long_name": "estimated numerical error of output_mean",
                                   "units": "target units"}),
            "residual": (("time", "stimulus"), resid,
                         {"long_name": "training residual g = y - output",
                          "units": "target units"}),
        },
        coords=coords,
    )
    ds["time"].attrs.update(units="time units of the dynamics", long_name="time")
    ds.attrs.update(
        _theory_attrs(problem),
        n_grid=int(len(sol.grid)),
        error_estimate=float(error.max()) if error.size else 0.0,
        interpolation_error=float(interp),
    )
    return ds


def _theory_attrs(problem: NDKProblem) -> dict:
    from drift import __version__

    return {
        "format": "ndk-drift",
        "format_version": 1,
        "kind": "theory",
        "package_version": __version__,
        "depth": problem.depth,
        "activation": _activation_name(problem.activation),
        "temperature": problem.temperature,
        "prior_variance": problem.prior_variance,
        "init_variance": problem.init_variance,
        "decay_rate": problem.lam,
        "time_units": "time units of the dynamics",
    }


def _grid_for(problem: NDKProblem, times: np.ndarray, refine: float, t_end=None) -> np.ndarray:
    rate = fastest_rate(problem)
    end = float(times[-1] if t_end is None else t_end)
    include = times[times <= end]
    return time_grid(end, fast_rate=rate, lam=problem.lam, refine=refine, include=include)


def equilibrium_posterior(
    x_train, y_train, x_test=None, *, depth: int, activation="relu", temperature: float,
    prior_variance: float, y_test=None, jitter: float = 1e-10,
) -> xr.Dataset:
    """The ``t -> infinity`` limit: GP posterior with the equilibrium NNGP kernel.

    ``mean(x) = C(x, X) (C(X, X) + T I)^-1 Y`` and
    ``var(x) = C(x, x) - C(x, X) (C(X, X) + T I)^-1 C(X, x)``, with ``C`` the NNGP kernel at
    weight variance ``sigma2`` (THEORY.md section 5). The variance is that of one network's
    output across the ensemble (the posterior predictive without the noise ``T``).

    Parameters
    ----------
    x_train : array_like, shape (P, N0)
    y_train : array_like, shape (P,)
    x_test : array_like, shape (P_test, N0), optional
    depth, activation, temperature, prior_variance
        As in :func:`mean_predictor` (``T = 0`` gives the noise-free GP, regularised by
        ``jitter`` times the mean diagonal).

    Returns
    -------
    xarray.Dataset
        ``posterior_mean (stimulus)``, ``posterior_variance (stimulus)``.
    """
    problem = _problem(x_train, y_train, depth, activation, temperature, prior_variance,
                       prior_variance)
    x_test = _test_inputs(x_test, problem.x_train.shape[1])
    x_all = np.concatenate([problem.x_train, x_test])
    s2 = problem.prior_variance
    st = kernel_stack(x_all, problem.x_train, s2, s2, s2, depth=depth, activation=activation)
    c_all = st.nngp
    p = problem.x_train.shape[0]
    c_tt = c_all[:p]
    noise = problem.temperature + jitter * float(np.mean(np.diag(c_tt)))
    chol = scipy.linalg.cho_factor(c_tt + noise * np.eye(p))
    mean = c_all @ scipy.linalg.cho_solve(chol, problem.y_train)
    diag = s2 * kernel_stack(x_all, x_all[:1], s2, s2, s2, depth=depth,
                             activation=activation).sig[-1].var1[:]
    var = diag - np.einsum("ij,ji->i", c_all, scipy.linalg.cho_solve(chol, c_all.T))
    if y_test is not None:
        y_test = check_targets(y_test, x_test.shape[0], "y_test")
    ds = xr.Dataset(
        {
            "posterior_mean": ("stimulus", mean, {"long_name": "equilibrium posterior mean",
                                                  "units": "target units"}),
            "posterior_variance": ("stimulus", np.maximum(var, 0.0),
                                   {"long_name": "equilibrium ensemble variance of the output",
                                    "units": "target units squared"}),
        },
        coords=_stimulus_coords(problem.y_train, y_test, x_test.shape[0]),
    )
    ds.attrs.update(_theory_attrs(problem))
    return ds


def _frozen_once(problem, t0, times, x_eval, grid):
    w_max = _w_max(problem, grid)
    table = problem.table(problem.x_train, ["G_f"], w_max)
    sol = solve_residual(problem, grid, table)
    comps = [f"Sig_{problem.depth}", "SigdG_L"]
    tab = problem.table(x_eval, comps, 1.0)
    lam = problem.lam
    out = np.zeros((len(times), x_eval.shape[0]))
    with threadpool_limits(limits=1, user_api="blas"):
        for k, t in enumerate(times):
            a_t = problem.m(t, t)
            cw1 = history_weights(problem, tab, comps[0], t, grid,
                                  factor=lambda s: np.exp(-lam * (t0 - s)))
            cw2 = history_weights(problem, tab, comps[1], t, grid,
                                  factor=lambda s, t=t: np.exp(-lam * (t - s)) * problem.m(t0, s))
            out[k] = np.einsum("mpq,mq->p", tab.row_table(comps[0], a_t), cw1 @ sol.residual)
            out[k] += np.einsum("mpq,mq->p", tab.row_table(comps[1], a_t), cw2 @ sol.residual)
    return out


def frozen_readout(
    x_train, y_train, x_test, t0: float, times, *, depth: int, activation="relu",
    temperature: float, prior_variance: float, init_variance: float, y_test=None,
    refine: float = 1.0,
) -> xr.Dataset:
    """Mean output when the readout is frozen at ``t0`` and learning stops.

    After ``t0`` the hidden weights follow the prior (no-data) dynamics while the readout
    keeps ``a(t0)``; THEORY.md section 6 gives, for ``t >= t0``,
    ``fbar_frozen(x, t) = int_0^t0 dt' sum_mu g_mu(t')
    [exp(-lambda (t0 - t')) Sig_L((x,t),(x_mu,t'))
    + exp(-lambda (t - t')) m(t0, t') Sigd_L G_L((x,t),(x_mu,t'))]``.
    It equals the mean predictor at ``t = t0`` and decays as the representation drifts.

    Parameters
    ----------
    t0 : float
        Freezing time (>= 0).
    times : array_like, shape (n,)
        Evaluation times, strictly increasing, each >= ``t0``.
    Other parameters as in :func:`mean_predictor`.

    Returns
    -------
    xarray.Dataset
        ``output_frozen (time, stimulus)`` and ``output_frozen_error`` (grid refinement).
    """
    problem = _problem(x_train, y_train, depth, activation, temperature, prior_variance,
                       init_variance)
    x_test = _test_inputs(x_test, problem.x_train.shape[1])
    times = check_times(times, "times")
    if not np.isfinite(t0) or t0 < 0:
        raise ValueError(f"t0 must be finite and >= 0 (got {t0})")
    if times[0] < t0:
        raise ValueError(f"times must all be >= t0={t0} (got min {times[0]})")
    if y_test is not None:
        y_test = check_targets(y_test, x_test.shape[0], "y_test")
    x_eval = np.concatenate([problem.x_train, x_test])
    if t0 == 0:
        fine = coarse = np.zeros((len(times), x_eval.shape[0]))
    else:
        grid = _grid_for(problem, np.array([0.0, t0]), refine, t_end=t0)
        coarse = _frozen_once(problem, t0, times, x_eval, grid)
        fine = _frozen_once(problem, t0, times, x_eval, _bisect(grid))
    err = np.broadcast_to(np.abs(fine - coarse).max(axis=1, keepdims=True), fine.shape).copy()
    coords = {"time": times, **_stimulus_coords(problem.y_train, y_test, x_test.shape[0])}
    ds = xr.Dataset(
        {
            "output_frozen": (("time", "stimulus"), fine,
                              {"long_name": "mean output with the readout frozen at t0",
                               "units": "target units"}),
            "output_frozen_error": (("time", "stimulus"), err,
                                    {"long_name": "estimated numerical error",
                                     "units": "target units"}),
        },
        coords=coords,
    )
    ds["time"].attrs.update(units="time units of the dynamics")
    ds.attrs.update(_theory_attrs(problem), freeze_time=float(t0),
                    error_estimate=float(err.max()) if err.size else 0.0)
    return ds


def hidden_kernel(x1, t1: float, x2, t2: float, *, layer: int, depth: int, activation="relu",
                  temperature: float, prior_variance: float, init_variance: float) -> np.ndarray:
    """Hidden population kernel ``Sig_l((x1, t1), (x2, t2))`` of layer ``layer``.

    The infinite-width limit of ``(1/N) sum_i phi(h_li(x1, t1)) phi(h_li(x2, t2))``
    (THEORY.md section 6); learning moves weights by O(1/sqrt(N)), so it follows the prior
    weight process.

    Returns
    -------
    ndarray, shape (P1, P2) (leading dims of ``t1``/``t2`` broadcast first)
    """
    check_depth(depth)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not (
        1 <= layer <= depth
    ):
        raise ValueError(f"layer must be an integer in 1..{depth} (got {layer!r})")
    k = two_time_kernels(x1, t1, x2, t2, depth=layer, activation=activation,
                         temperature=temperature, prior_variance=prior_variance,
                         init_variance=init_variance)
    return k[f"Sig_{layer}"]


def hidden_autocorrelation(
    x, t0: float, lags, *, layer: int, depth: int, activation="relu", temperature: float,
    prior_variance: float, init_variance: float,
) -> xr.Dataset:
    """Two-time autocorrelation of each stimulus' representation in layer ``layer``.

    ``A(x, tau) = Sig_l((x, t0), (x, t0 + tau))``: it decays from ``Sig_l(s, s)`` to the
    floor ``E[phi(u_x(t0))] E[phi(u_x(inf))]`` (``E[phi(u_x)]^2`` once the weight variance
    is stationary); deeper layers decay
    faster. ``correlation`` is ``A`` divided by ``sqrt(Sig_l(s,s) Sig_l(s',s'))`` and
    ``normalised`` maps the equal-time value to 1 and the floor to 0.

    Parameters
    ----------
    x : array_like, shape (S, N0)
    t0 : float
        Reference time.
    lags : array_like, shape (n,)
        Elapsed times ``tau >= 0``.

    Returns
    -------
    xarray.Dataset
        ``autocorrelation``, ``correlation``, ``normalised`` over (``lag``, ``stimulus``)
        and ``floor`` over ``stimulus``.
    """
    check_depth(depth)
    if not 1 <= layer <= depth:
        raise ValueError(f"layer must be in 1..{depth} (got {layer!r})")
    x = check_inputs(x, "x")
    lags = check_times(lags, "lags")
    kw = dict(temperature=temperature, prior_variance=prior_variance, init_variance=init_variance)
    act = get_activation(activation)
    vals, norms = [], []
    for tau in lags:
        t1 = t0 + tau
        a, b, c = (prior_correlation(u, v, **kw) for u, v in ((t0, t0), (t1, t1), (t0, t1)))
        rows = []
        for k in range(x.shape[0]):
            st = kernel_stack(x[k : k + 1], x[k : k + 1], a, b, c, depth=layer, activation=act)
            sig = st.sig[layer - 1]
            rows.append((sig.cross[0, 0], np.sqrt(sig.var1[0] * sig.var2[0])))
        vals.append([r[0] for r in rows])
        norms.append([r[1] for r in rows])
    auto = np.array(vals)
    corr = auto / np.array(norms)
    def mean_activity(v):  # E[phi(u_x)] at weight variance v (all layers stationary at v)
        if layer == 1:
            return act.expected_value(v * np.sum(x**2, 1) / x.shape[1])
        st = kernel_stack(x, x[:1], v, v, v, depth=layer - 1, activation=act)
        return act.expected_value(v * st.sig[-1].var1)

    a0 = float(prior_correlation(t0, t0, **kw))
    floor = mean_activity(a0) * mean_activity(float(prior_variance))
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = (auto - floor) / (auto[:1] - floor)
    coords = {"lag": lags, "stimulus": np.arange(x.shape[0])}
    ds = xr.Dataset(
        {
            "autocorrelation": (("lag", "stimulus"), auto, {"units": "activity squared"}),
            "correlation": (("lag", "stimulus"), corr, {"units": "1"}),
            "normalised": (("lag", "stimulus"), normalised, {"units": "1"}),
            "floor": ("stimulus", floor, {"units": "activity squared"}),
        },
        coords=coords,
    )
    ds["lag"].attrs.update(units="time units of the dynamics")
    ds.attrs.update(layer=layer, reference_time=float(t0), **kw)
    return ds


def fixed_decoder(
    x_train, y_train, x_eval, t0: float, times, *, layer: int, alpha: float = 1e-3,
    depth: int, activation="relu", temperature: float, prior_variance: float,
    init_variance: float, y_eval=None,
) -> xr.Dataset:
    """A ridge decoder fitted on layer ``layer`` at ``t0`` and applied at later times.

    Predicts ``Sig_l(t, t0)(x, X) (Sig_l(t0, t0)(X, X) + alpha I)^-1 Y`` (THEORY.md
    section 6: kernel regression with the two-time kernel, 1/N population normalisation).

    Parameters
    ----------
    x_train, y_train
        Stimuli and targets the decoder is fitted on (at ``t0``).
    x_eval : array_like, shape (S, N0)
        Stimuli it is applied to.
    t0 : float
        Fitting time.
    times : array_like
        Application times (>= 0).
    layer : int
        Hidden layer 1..L read by the decoder.
    alpha : float
        Ridge penalty (> 0) in units of the 1/N-normalised kernel.
    y_eval : array_like, optional
        Targets of ``x_eval``; when given, ``decoder_accuracy`` (sign agreement) is added.

    Returns
    -------
    xarray.Dataset
        ``decoder_output (time, stimulus)`` [+ ``decoder_accuracy (time)``].
    """
    problem = _problem(x_train, y_train, depth, activation, temperature, prior_variance,
                       init_variance)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be > 0 (got {alpha})")
    x_eval = check_inputs(x_eval, "x_eval", n_features=problem.x_train.shape[1])
    times = check_times(times, "times")
    kw = dict(depth=depth, activation=activation, temperature=temperature,
              prior_variance=prior_variance, init_variance=init_variance)
    k0 = hidden_kernel(problem.x_train, t0, problem.x_train, t0, layer=layer, **kw)
    p = k0.shape[0]
    coef = np.linalg.solve(k0 + alpha * np.eye(p), problem.y_train)
    out = np.stack([hidden_kernel(x_eval, t, problem.x_train, t0, layer=layer, **kw) @ coef
                    for t in times])
    data = {"decoder_output": (("time", "stimulus"), out,
                               {"long_name": "fixed decoder output", "units": "target units"})}
    coords = {"time": times, "stimulus": np.arange(x_eval.shape[0])}
    if y_eval is not None:
        y_eval = check_targets(y_eval, x_eval.shape[0], "y_eval")
        coords["target"] = ("stimulus", y_eval)
        data["decoder_accuracy"] = ("time", np.mean(np.sign(out) == np.sign(y_eval), axis=1),
                                    {"long_name": "fraction of stimuli decoded with the right sign",
                                     "units": "1"})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(_theory_attrs(problem), layer=layer, alpha=alpha, fit_time=float(t0))
    return ds


def time_scales(x_train, *, depth: int, activation="relu", temperature: float,
                prior_variance: float, init_variance: float) -> dict:
    """Characteristic time scales of the two learning phases.

    Returns
    -------
    dict
        ``gradient_rates``: eigenvalues of the NTK Gram at ``sigma02`` on the training set,
        descending (1 / time units; the gradient-driven phase relaxes mode k as
        ``exp(-rate_k t)``); ``diffusive_rate``: ``lambda = T / sigma2``;
        ``gradient_time``: ``1 / max rate``; ``diffusive_time``: ``1 / lambda``
        (inf at T = 0); ``stable_dt``: ``1 / max rate over the run`` (the largest safe
        simulation step).
    """
    x_train = check_inputs(x_train, "x_train")
    check_variances(temperature=temperature, prior_variance=prior_variance,
                    init_variance=init_variance)
    k = ntk(x_train, depth=depth, activation=activation, variance=init_variance)
    rates = np.linalg.eigvalsh(0.5 * (k + k.T))[::-1]
    lam = decay_rate(temperature, prior_variance)
    problem = NDKProblem(x_train, np.zeros(x_train.shape[0]), depth, activation,
                         temperature, prior_variance, init_variance)
    return {
        "gradient_rates": rates,
        "diffusive_rate": lam,
        "gradient_time": 1.0 / rates[0],
        "diffusive_time": np.inf if lam == 0 else 1.0 / lam,
        "stable_dt": 1.0 / fastest_rate(problem),
    }


def _train_operator(problem: NDKProblem, grid: np.ndarray, table) -> np.ndarray:
    """Dense discretised NDK operator ``(A u)(t_i) = int_0^t_i K_d(t_i, s) u(s) ds``.

    Returns an array of shape (n, n, P_rows, P) (zero above the time diagonal).
    """
    n = len(grid)
    a_grid = problem.m(grid, grid)
    p_rows = table.x_rows.shape[0]
    op = np.zeros((n, n, p_rows, problem.x_train.shape[0]))
    for i in range(1, n):
        cw = history_weights(problem, table, "G_f", grid[i], grid[: i + 1])
        op[i, : i + 1] = np.einsum("mj,mpq->jpq", cw, table.row_table("G_f", a_grid[i]))
    return op


def _nngp_blocks(problem: NDKProblem, grid: np.ndarray, x_rows, x_cols, cols_idx) -> np.ndarray:
    """Two-time NNGP ``C((x_rows, t_i), (x_cols, t_j))`` for all i and j in ``cols_idx``.

    Returns shape (n, len(cols_idx), P_rows, P_cols).
    """
    kw = dict(temperature=problem.temperature, prior_variance=problem.prior_variance,
              init_variance=problem.init_variance)
    out = np.zeros((len(grid), len(cols_idx), x_rows.shape[0], x_cols.shape[0]))
    for jj, j in enumerate(cols_idx):
        out[:, jj] = two_time_kernels(x_rows, grid, x_cols, grid[j], depth=problem.depth,
                                      activation=problem.activation, **kw)["C"]
    return out


def _variance_once(problem, x_test, grid, idx, max_size):
    p, n = problem.x_train.shape[0], len(grid)
    if n * p > max_size:
        raise ValueError(
            f"output_variance needs a dense system of size n_grid * P = {n} * {p} = {n * p} > "
            f"max_size={max_size}; use fewer training points or times, or a smaller refine"
        )
    w_max = _w_max(problem, grid)
    table = problem.table(problem.x_train, ["G_f"], w_max)
    with threadpool_limits(limits=1, user_api="blas"):
        a_op = _train_operator(problem, grid, table)
    big = np.eye(n * p) + a_op.transpose(0, 2, 1, 3).reshape(n * p, n * p)
    lu = scipy.linalg.lu_factor(big)
    c_xx = _nngp_blocks(problem, grid, problem.x_train, problem.x_train, range(n))
    c_xx = c_xx.transpose(0, 2, 1, 3).reshape(n * p, n * p)
    s = scipy.linalg.lu_solve(lu, scipy.linalg.lu_solve(lu, c_xx).T).T  # M^-1 C M^-T
    var_train = np.array([np.diag(s[i * p : (i + 1) * p, i * p : (i + 1) * p]) for i in idx])
    if x_test.shape[0] == 0:
        return var_train
    pt = x_test.shape[0]
    tab_x = problem.table(x_test, ["G_f"], w_max)
    with threadpool_limits(limits=1, user_api="blas"):
        a_x = _train_operator(problem, grid, tab_x)[idx]  # (r, n, Pt, P)
    a_x = a_x.transpose(0, 2, 1, 3).reshape(len(idx) * pt, n * p)
    b = scipy.linalg.lu_solve(lu, a_x.T, trans=1).T  # A_x M^-1, (r Pt, n P)
    c_xt = _nngp_blocks(problem, grid, problem.x_train, x_test, idx)  # (n, r, P, Pt)
    c_xt = c_xt.transpose(0, 2, 1, 3).reshape(n * p, len(idx) * pt)
    cross = np.einsum("ij,ji->i", b, c_xt)
    # Var = C_xx - 2 B C_Xx + B C_XX B^T  with B = A_x M^-1
    quad = np.einsum("ij,ji->i", b @ c_xx, b.T)
    diag_x = np.array([np.diag(two_time_kernels(x_test, grid[i], x_test, grid[i],
                                                depth=problem.depth,
                                                activation=problem.activation,
                                                temperature=problem.temperature,
                                                prior_variance=problem.prior_variance,
                                                init_variance=problem.init_variance)["C"])
                       for i in idx])
    var_test = diag_x - 2 * cross.reshape(len(idx), pt) + quad.reshape(len(idx), pt)
    return np.concatenate([var_train, var_test], axis=1)


def output_variance(
    x_train, y_train, x_test, times, *, depth: int, activation="relu", temperature: float,
    prior_variance: float, init_variance: float, y_test=None, refine: float = 0.5,
    max_size: int = 6000,
) -> xr.Dataset:
    """Ensemble variance of the output over time (THEORY.md section 5, last paragraph).

    Each network's output is ``f = f0 + int K_d (Y - f)`` with ``f0`` the zero-mean
    Gaussian process of covariance ``C(s, s')`` (the two-time NNGP). The fluctuation
    around the mean obeys the same linear Volterra equation, so on the training set
    ``delta g = (I + A)^-1 f0`` and at any x ``delta f = f0 - A_x delta g``; the
    covariance follows by applying the discretised resolvent on both sides of ``C``.

    The system is dense in (time x training point), so this is meant for moderate sizes:
    ``n_grid * P <= max_size`` (``n_grid`` a few hundred with the default ``refine``).
    The error estimate comes from a grid with every interval halved when that still fits.

    Parameters
    ----------
    Same as :func:`mean_predictor`; ``refine`` scales the internal grid (default 0.5,
    coarser than the mean predictor's), ``max_size`` caps the dense system.

    Returns
    -------
    xarray.Dataset
        ``output_variance (time, stimulus)`` (target units^2, variance across networks)
        and ``output_variance_error`` (NaN when the refined grid does not fit).
    """
    problem = _problem(x_train, y_train, depth, activation, temperature, prior_variance,
                       init_variance)
    x_test = _test_inputs(x_test, problem.x_train.shape[1])
    times = check_times(times, "times")
    if y_test is not None:
        y_test = check_targets(y_test, x_test.shape[0], "y_test")
    grid = _grid_for(problem, times, refine)
    var = _variance_once(problem, x_test, grid, np.searchsorted(grid, times), max_size)
    fine_grid = _bisect(grid)
    if len(fine_grid) * problem.x_train.shape[0] <= max_size:
        fine = _variance_once(problem, x_test, fine_grid, np.searchsorted(fine_grid, times),
                              max_size)
        err = np.broadcast_to(np.abs(fine - var).max(axis=1, keepdims=True), var.shape).copy()
        var = fine
    else:
        err = np.full_like(var, np.nan)
    coords = {"time": times, **_stimulus_coords(problem.y_train, y_test, x_test.shape[0])}
    ds = xr.Dataset(
        {
            "output_variance": (("time", "stimulus"), var,
                                {"long_name": "ensemble variance of the output",
                                 "units": "target units squared"}),
            "output_variance_error": (("time", "stimulus"), err,
                                      {"long_name": "estimated numerical error",
                                       "units": "target units squared"}),
        },
        coords=coords,
    )
    ds.attrs.update(_theory_attrs(problem), n_grid=int(len(grid)))
    return ds
