"""Theory beside data: NDK predictions next to a simulated ensemble, in standard errors.

For a simulation run (docs/data_format.md) the run's own configuration (attribute
``config``) and stimuli (regenerated with :func:`drift.datasets.load_dataset`, checked
against the run's ``data_sha256``) give the infinite-width predictions of THEORY.md
sections 5-6 at the recorded times; each is set beside the ensemble measurement and the
discrepancy is expressed as a z-score

    z = (measured - predicted) / sqrt(SE^2 + err^2),

with ``SE`` the standard error of the ensemble mean over members (``std / sqrt(M)``) and
``err`` the theory's own numerical error estimate where it reports one.

Why the member-wise SE is the right yardstick: members are independent draws of the
Langevin process (own initialisation, own noise), so their per-member statistics are
i.i.d. and ``std / sqrt(M)`` is the honest error of their mean. Units inside one member
are *not* independent (they share the previous layer's weights and the learning signal),
so an error bar over units, or over units pooled across members, is too small. With a
correct theory ``z`` is then approximately standard normal as long as the finite-width
corrections to the measured means are small against ``SE``: ``SE`` is ``O(1/sqrt(M))`` for
the output and ``O(1/sqrt(M N))`` for population kernels (``M`` members, width ``N``),
while the kernels carry a relative correction of order :func:`finite_width_load` (how
far learning has to move the weights, ``y^T (C + T)^-1 C (C + T)^-1 y / N``) plus
``O(1/N)``. Over ``n`` comparisons the largest ``|z|`` of a correct theory exceeds
:func:`bonferroni_z` ``(n)`` with probability about ``1e-3``; a wrong configuration
(another temperature, variance, depth) gives ``|z|`` in the tens.

Functions: :func:`theory_beside_data` (mean output, hidden kernels, output accuracy),
:func:`frozen_readout_beside_theory` (readout frozen at ``t0``),
:func:`fixed_decoder_beside_theory` (a ridge decoder fitted at ``t0``), plus
:func:`run_config` and :func:`run_stimuli` (what a run was made from).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
import xarray as xr

from analyses._runs import (
    check_run,
    run_config,
    run_stimuli,
    split_labels,
    theory_parameters,
)
from analyses.readout import fixed_decoder as _decoder_accuracy
from drift.config import RunConfig, config_to_dict, config_to_yaml, load_config
from drift.datasets import Dataset
from drift.theory import (
    fixed_decoder,
    frozen_readout,
    hidden_kernel,
    mean_predictor,
    nngp,
    output_variance,
)

__all__ = [
    "bonferroni_z",
    "finite_width_load",
    "fixed_decoder_beside_theory",
    "frozen_readout_beside_theory",
    "run_config",
    "run_stimuli",
    "theory_beside_data",
]

_YARDSTICK = (
    "z = (measured - theory) / sqrt(SE^2 + err^2); SE = std over members / sqrt(members) "
    "(members are independent; units within a member are not); err = the theory's "
    "numerical error estimate where available"
)


def bonferroni_z(n_comparisons: int, family_alpha: float = 1e-3) -> float:
    """|z| that ``n_comparisons`` standard-normal scores all stay below with prob. ``1 - alpha``.

    The two-sided Bonferroni bound ``Phi^-1(1 - alpha / (2 n))``: about 3.3 for one
    comparison, 4.9 for 1000.

    Parameters
    ----------
    n_comparisons : int
        Number of z-scores (>= 1).
    family_alpha : float
        Probability that a correct theory exceeds the bound anywhere.
    """
    n = max(int(n_comparisons), 1)
    return float(NormalDist().inv_cdf(1.0 - family_alpha / (2.0 * n)))


def finite_width_load(x_train, y_train, width: int, *, depth: int, activation="relu",
                      temperature: float, prior_variance: float, **_: object) -> float:
    """Mean square the learned readout adds to the prior, per weight, in units of ``sigma2``.

    ``y^T (C + T I)^-1 C (C + T I)^-1 y / N`` with ``C`` the equilibrium NNGP kernel
    (weight variance ``sigma2``) on the training set: the squared norm of the equilibrium
    posterior mean of the readout divided by ``N sigma2``. Learning moves every weight by
    ``O(sqrt(load / N))``-sized amounts whose coherent sum shifts the hidden kernels by a
    relative amount of this order, the leading finite-width correction to THEORY.md
    section 6. A comparison in member standard errors is sharp only while the load is
    small against the relative SE of the kernels (about ``1 / sqrt(M N)``, ``M`` members);
    loads of a few percent are fine for ``M ~ 50``, ``N ~ 100``.

    Parameters
    ----------
    x_train : array_like, shape (P, N0)
    y_train : array_like, shape (P,)
    width : int
        Hidden width ``N``.
    depth, activation, temperature, prior_variance
        As in :func:`drift.theory.mean_predictor` (other keywords are ignored, so the
        predictor keyword set can be passed as is).

    Returns
    -------
    float
        The load (dimensionless, >= 0).
    """
    x_train = np.asarray(x_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    if y.size == 0:
        return 0.0
    c = nngp(x_train, x_train, depth=depth, activation=activation, variance=prior_variance)
    coef = np.linalg.lstsq(c + temperature * np.eye(y.size), y, rcond=None)[0]
    return float(coef @ c @ coef) / float(width)


# ----------------------------------------------------------------------------- helpers


def _mean_se(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``axis`` and its standard error ``std (ddof 1) / sqrt(n)``."""
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, values.std(axis=axis, ddof=1) / np.sqrt(n)


def _z(measured, predicted, se, err=0.0) -> np.ndarray:
    scale = np.sqrt(np.asarray(se, float) ** 2 + np.asarray(err, float) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (np.asarray(measured, float) - np.asarray(predicted, float)) / scale
    return np.where(scale > 0, z, np.nan)


def _summary(ds: xr.Dataset, quantities: Sequence[str]) -> xr.Dataset:
    """``max_abs_z``, ``rms_z``, ``n_compared`` and ``z_limit`` over a ``quantity`` dim."""
    mx, rms, n, lim = [], [], [], []
    for q in quantities:
        z = np.abs(ds[f"{q}_z"].values)
        z = z[np.isfinite(z)]
        n.append(z.size)
        mx.append(float(z.max()) if z.size else np.nan)
        rms.append(float(np.sqrt(np.mean(z**2))) if z.size else np.nan)
        lim.append(bonferroni_z(z.size))
    coords = {"quantity": list(quantities)}
    ds["max_abs_z"] = xr.DataArray(mx, dims="quantity", coords=coords,
                                   attrs={"units": "1", "long_name": "largest |z|"})
    ds["rms_z"] = xr.DataArray(rms, dims="quantity", coords=coords,
                               attrs={"units": "1", "long_name": "root-mean-square z"})
    ds["n_compared"] = xr.DataArray(n, dims="quantity", coords=coords,
                                    attrs={"units": "1", "long_name": "finite z-scores"})
    ds["z_limit"] = xr.DataArray(
        lim, dims="quantity", coords=coords,
        attrs={"units": "1", "long_name": "two-sided Bonferroni |z| bound at family alpha 1e-3"},
    )
    ds.attrs["max_abs_z"] = float(np.nanmax(mx)) if np.isfinite(mx).any() else np.nan
    ds.attrs["yardstick"] = _YARDSTICK
    return ds


def _put(ds: xr.Dataset, name: str, dims, measured, se, theory, err=0.0, *, what: str,
         units: str = "1") -> None:
    """Add ``name_measured``, ``name_se``, ``name_theory`` and ``name_z``."""
    ds[f"{name}_measured"] = (dims, measured, {"units": units,
                                               "long_name": f"{what}, ensemble mean"})
    ds[f"{name}_se"] = (dims, se, {"units": units,
                                   "long_name": f"{what}, standard error over members"})
    ds[f"{name}_theory"] = (dims, theory, {"units": units,
                                           "long_name": f"{what}, NDK prediction"})
    ds[f"{name}_z"] = (dims, _z(measured, theory, se, err),
                       {"units": "1", "long_name": f"{what}, (measured - theory) / error"})


def _splits(split: np.ndarray) -> list[str]:
    return [s for s in ("train", "test") if np.any(split == s)]


def _accuracy(values: np.ndarray, target: np.ndarray, split: np.ndarray) -> np.ndarray:
    """Sign agreement with ``target`` per split; values (..., S) -> (..., n_splits)."""
    known = np.isfinite(target) & (target != 0)
    correct = np.sign(values) == np.sign(target)
    out = []
    for s in _splits(split):
        sel = known & (split == s)
        out.append(correct[..., sel].mean(axis=-1) if sel.any()
                   else np.full(values.shape[:-1], np.nan))
    return np.stack(out, axis=-1)


def _coords(run: xr.Dataset, times: np.ndarray | None = None) -> dict:
    t = run["time"] if times is None else run["time"].sel(time=times)
    return {
        "time": ("time", t.values, dict(run["time"].attrs)),
        "stimulus": run["stimulus"].values,
        "split": ("stimulus", split_labels(run)),
        "target": ("stimulus", np.asarray(run["target"].values, dtype=np.float64)),
    }


def _nearest_index(times: np.ndarray, t: float | None, what: str) -> int:
    if t is None:
        return 0
    if not np.isfinite(t):
        raise ValueError(f"{what} must be finite (got {t})")
    return int(np.abs(times - float(t)).argmin())


def _resolve_layers(run: xr.Dataset, layers) -> list[int]:
    have = [int(v) for v in run["layer"].values]
    if layers is None:
        return have
    layers = [int(v) for v in np.atleast_1d(layers)]
    bad = [v for v in layers if v not in have]
    if bad:
        raise ValueError(f"layers {bad} are not recorded in the run (recorded: {have})")
    return layers


def _stimuli_all(data: Dataset) -> np.ndarray:
    return np.concatenate([data.x_train, data.x_test])


def _slab(act: xr.DataArray, **isel) -> np.ndarray:
    """One (member, unit, stimulus) block as float64."""
    return act.isel(isel).transpose("member", "unit", "stimulus").values.astype(np.float64)


# ------------------------------------------------------------------- theory_beside_data


def theory_beside_data(
    run: xr.Dataset,
    *,
    x_train: np.ndarray | None = None,
    x_test: np.ndarray | None = None,
    reference_time: float | None = None,
    layers: Sequence[int] | int | None = None,
    stimuli: Sequence[int] | None = None,
    variance: bool = True,
    refine: float = 1.0,
) -> xr.Dataset:
    """NDK predictions at a run's recorded times beside the ensemble measurements.

    Three comparisons, each as ``<q>_measured``, ``<q>_se``, ``<q>_theory`` and ``<q>_z``
    (see the module docstring for the z-score and why the member-wise SE is used):

    1. ``output``: the ensemble-mean output vs :func:`drift.theory.mean_predictor`
       (the numerical error estimate of the solver enters the z-score), and
       ``output_variance``: the variance of the output across members vs
       :func:`drift.theory.output_variance`; its SE is the sampling error of a variance
       of ``M`` Gaussian outputs, ``v_theory sqrt(2 / (M - 1))`` (the outputs are
       Gaussian at infinite width; a fourth moment estimated from ~50 members is too
       noisy to serve as yardstick);
    2. hidden population kernels of every recorded layer: per member,
       ``(1/N_rec) sum_i phi_i(x, t) phi_i(x', t')`` over the ``N_rec`` recorded units (an
       unbiased estimate of the kernel of all ``N`` units, since units are exchangeable),
       then mean and SE over members, vs :func:`drift.theory.hidden_kernel`:
       ``kernel`` between ``(x, t)`` and ``(x', t_ref)``, its diagonal ``autocorrelation``
       (``x = x'``: the two-time autocorrelation of each stimulus' representation), and
       the ``same_time_kernel`` (``t' = t``: the representational similarity);
    3. output accuracy (sign agreement with the target) per split: ``accuracy_measured``
       (member mean) with ``accuracy_se``, ``ensemble_accuracy`` (of the member-mean
       output) and ``accuracy_theory`` (of the theory's mean output), plus
       ``accuracy_expected``, the expected accuracy of one member,
       ``mean_s Phi(sign(y_s) fbar_s / sqrt(v_s))`` with the predicted mean and variance,
       and ``sign_agreement``, the fraction of stimuli where measured and predicted mean
       outputs have the same sign. Accuracy is a sign of the output, so it carries no
       z-score of its own: the ``output`` z-scores test it.

    Parameters
    ----------
    run : xarray.Dataset
        A simulation run (``activity (time, member, layer, unit, stimulus)``,
        ``output (time, member, stimulus)``, attribute ``config``); may be dask-backed
        (one time and layer is loaded at a time).
    x_train, x_test : ndarray, optional
        Stimuli ``(P, N0)``, ``(P_test, N0)`` of a run made from explicit arrays (see
        :func:`run_stimuli`); by default regenerated from the run's configuration.
    reference_time : float, optional
        ``t_ref`` of the two-time kernel (nearest recorded time); default the first.
    layers : int or sequence of int, optional
        Recorded layers to compare (default all recorded).
    stimuli : sequence of int, optional
        Positions of the stimuli whose outputs and kernels are compared (default all).
        The kernel variables take ``times x layers x stimuli^2`` values each, so select a
        subset for large stimulus sets; accuracies always use every stimulus.
    variance : bool
        Compare the output variance too (skipped, with attribute
        ``output_variance_skipped`` saying why, when the dense variance solver would be
        too large for the training set).
    refine : float
        Passed to :func:`drift.theory.mean_predictor` (finer internal time grid).

    Returns
    -------
    xarray.Dataset
        Over ``time`` (time units of the dynamics), ``stimulus`` (with ``split``,
        ``target``), ``stimulus_ref``, ``layer``, ``split_name``:

        * ``output_*``, ``output_variance_*`` (time, stimulus) and
          ``output_theory_error``;
        * ``kernel_*``, ``same_time_kernel_*`` (time, layer, stimulus, stimulus_ref);
        * ``autocorrelation_*`` (time, layer, stimulus);
        * ``accuracy_measured``, ``accuracy_se``, ``ensemble_accuracy``,
          ``accuracy_theory``, ``accuracy_expected`` (time, split_name);
          ``sign_agreement`` (time);
        * summary over ``quantity`` (``output``, ``output_variance``, ``kernel``,
          ``same_time_kernel``):
          ``max_abs_z``, ``rms_z``, ``n_compared``, ``z_limit`` (:func:`bonferroni_z`).

        Attributes: ``max_abs_z`` (over all quantities), ``reference_time``, ``members``,
        ``units_recorded``, ``width``, ``theory_error_estimate``,
        ``finite_width_load`` (:func:`finite_width_load`: when it is not small, expect
        ``|z|`` to grow in the late, learned phase even with the right configuration),
        ``yardstick`` and the run's ``config``.

    Raises
    ------
    ValueError
        ``run`` is not a simulation run, its stimuli cannot be rebuilt, or ``layers`` or
        ``stimuli`` are not recorded.
    """
    check_run(run)
    cfg = run_config(run)
    data = run_stimuli(run, x_train=x_train, x_test=x_test)
    params = theory_parameters(cfg)
    times = np.asarray(run["time"].values, dtype=np.float64)
    i_ref = _nearest_index(times, reference_time, "reference_time")
    t_ref = float(times[i_ref])
    layer_list = _resolve_layers(run, layers)
    x_all = _stimuli_all(data)
    split = split_labels(run)
    target = np.asarray(run["target"].values, dtype=np.float64)
    members = run.sizes["member"]
    n_stim = run.sizes["stimulus"]
    sel = np.arange(n_stim) if stimuli is None else np.asarray(stimuli, dtype=np.int64).ravel()
    if sel.size == 0 or sel.min() < 0 or sel.max() >= n_stim or np.unique(sel).size != sel.size:
        raise ValueError(f"stimuli must be distinct positions in 0..{n_stim - 1} (got {stimuli})")

    ds = xr.Dataset(coords=_coords(run.isel(stimulus=sel)))
    ds = ds.assign_coords(stimulus_ref=("stimulus_ref", ds["stimulus"].values),
                          layer=("layer", layer_list))

    # 1. mean output
    out = run["output"].transpose("time", "member", "stimulus").values.astype(np.float64)
    o_mean, o_se = _mean_se(out, 1)
    th = mean_predictor(data.x_train, data.y_train, data.x_test, times, y_test=data.y_test,
                        refine=refine, **params)
    o_th, o_err = th["output_mean"].values, th["output_mean_error"].values
    _put(ds, "output", ("time", "stimulus"), o_mean[:, sel], o_se[:, sel], o_th[:, sel],
         o_err[:, sel], what="network output f(x, t)", units="target units")
    ds["output_theory_error"] = (("time", "stimulus"), o_err[:, sel],
                                 {"units": "target units",
                                  "long_name": "estimated numerical error of the prediction"})
    v_th = None
    if variance:
        try:
            vt = output_variance(data.x_train, data.y_train, data.x_test, times,
                                 y_test=data.y_test, **params)
        except ValueError as err:  # the dense solver's size limit
            ds.attrs["output_variance_skipped"] = str(err)
        else:
            v_th = vt["output_variance"].values
            v_err = np.nan_to_num(vt["output_variance_error"].values, nan=0.0)
            v_se = v_th * np.sqrt(2.0 / max(members - 1, 1))
            _put(ds, "output_variance", ("time", "stimulus"), out.var(axis=1, ddof=1)[:, sel],
                 v_se[:, sel], v_th[:, sel], v_err[:, sel],
                 what="variance of the output across members", units="target units squared")

    # 2. hidden kernels
    act = run["activity"].isel(stimulus=sel)
    x_k = x_all[sel]
    n_units = act.sizes["unit"]
    shape = (len(times), len(layer_list), sel.size, sel.size)
    two_m, two_se, same_m, same_se = (np.empty(shape) for _ in range(4))
    two_th, same_th = np.empty(shape), np.empty(shape)
    for j, layer in enumerate(layer_list):
        lact = act.sel(layer=layer)
        ref = _slab(lact, time=i_ref)
        for k in range(len(times)):
            a = ref if k == i_ref else _slab(lact, time=k)
            two = np.einsum("mus,muv->msv", a, ref) / n_units
            same = np.einsum("mus,muv->msv", a, a) / n_units
            two_m[k, j], two_se[k, j] = _mean_se(two, 0)
            same_m[k, j], same_se[k, j] = _mean_se(same, 0)
        two_th[:, j] = hidden_kernel(x_k, times, x_k, t_ref, layer=layer, **params)
        same_th[:, j] = hidden_kernel(x_k, times, x_k, times, layer=layer, **params)
    kdims = ("time", "layer", "stimulus", "stimulus_ref")
    _put(ds, "kernel", kdims, two_m, two_se, two_th,
         what=f"hidden kernel between (x, t) and (x', t_ref = {t_ref:.6g})",
         units="activity squared")
    _put(ds, "same_time_kernel", kdims, same_m, same_se, same_th,
         what="same-time hidden kernel between (x, t) and (x', t)", units="activity squared")
    diag = np.arange(sel.size)
    _put(ds, "autocorrelation", ("time", "layer", "stimulus"), two_m[..., diag, diag],
         two_se[..., diag, diag], two_th[..., diag, diag],
         what=f"two-time autocorrelation between (x, t) and (x, t_ref = {t_ref:.6g})",
         units="activity squared")

    # 3. accuracy
    names = _splits(split)
    acc = _accuracy(out, target, split)  # (time, member, split)
    a_mean, a_se = _mean_se(acc, 1)
    ds = ds.assign_coords(split_name=("split_name", names))
    adims = ("time", "split_name")
    ds["accuracy_measured"] = (adims, a_mean, {"units": "1", "long_name":
                                               "output accuracy, mean over members"})
    ds["accuracy_se"] = (adims, a_se, {"units": "1", "long_name":
                                       "output accuracy, standard error over members"})
    ds["ensemble_accuracy"] = (adims, _accuracy(o_mean, target, split),
                               {"units": "1", "long_name": "accuracy of the member-mean output"})
    ds["accuracy_theory"] = (adims, _accuracy(o_th, target, split),
                             {"units": "1", "long_name": "accuracy of the NDK mean output"})
    if v_th is not None:
        from scipy.special import ndtr

        with np.errstate(invalid="ignore", divide="ignore"):
            p = ndtr(np.sign(target) * o_th / np.sqrt(v_th))
        p = np.where(np.isfinite(target) & (target != 0), p, np.nan)
        expected = np.stack([np.nanmean(p[:, split == s], axis=1) for s in names], axis=-1)
        ds["accuracy_expected"] = (adims, expected, {"units": "1", "long_name":
                                                     "expected accuracy of one member (NDK "
                                                     "mean and variance)"})
    ds["sign_agreement"] = ("time", np.mean(np.sign(o_mean) == np.sign(o_th), axis=1),
                            {"units": "1", "long_name":
                             "fraction of stimuli where measured and NDK mean outputs agree "
                             "in sign"})

    quantities = ["output"] + (["output_variance"] if v_th is not None else [])
    ds = _summary(ds, quantities + ["kernel", "same_time_kernel"])
    ds.attrs.update(
        reference_time=t_ref,
        members=int(members),
        units_recorded=int(n_units),
        width=int(cfg.network.width),
        theory_error_estimate=float(th.attrs.get("error_estimate", np.nan)),
        finite_width_load=finite_width_load(data.x_train, data.y_train, cfg.network.width,
                                            **params),
        config=run.attrs["config"],
        time_units=run["time"].attrs.get("units", "time units of the dynamics"),
    )
    return ds


# ------------------------------------------------------------------------ frozen readout


def _frozen_config(cfg: RunConfig, t0: float, times: np.ndarray, members, seed) -> dict:
    tree = config_to_dict(cfg)
    rec = np.unique(np.concatenate([[0.0, t0], times]))
    tree["dynamics"]["duration"] = float(rec[-1])
    tree["record"].update(times=[float(v) for v in rec], units=1,
                          layers=[cfg.network.depth], first_time=None)
    if members is not None:
        tree["ensemble"]["members"] = int(members)
    if seed is not None:
        tree["ensemble"]["seed"] = int(seed)
    return tree


def frozen_readout_beside_theory(
    source: xr.Dataset | RunConfig | Mapping | str | Path,
    t0: float | None = None,
    times: Sequence[float] | np.ndarray | None = None,
    *,
    members: int | None = None,
    seed: int | None = None,
    x_train: np.ndarray | None = None,
    y_train: np.ndarray | None = None,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    refine: float = 1.0,
    progress: bool = False,
) -> xr.Dataset:
    """Frozen-readout experiment beside :func:`drift.theory.frozen_readout`.

    The readout is fixed at ``a(t0)`` and learning stops; the hidden weights keep the
    prior dynamics, the representation decorrelates and the output decays (THEORY.md
    section 6). The ensemble-mean output at every recorded time ``t >= t0`` is compared
    with the prediction in standard errors over members.

    Parameters
    ----------
    source : xarray.Dataset, RunConfig, mapping or YAML path
        A frozen run (attribute ``freeze_readout_at``, made with
        ``simulate(..., freeze_readout_at=t0)``): compared as it is. Otherwise a
        configuration, or a run whose configuration is used: an ensemble is simulated
        with the readout frozen at ``t0`` (recording one unit of the last layer, the
        output and the loss only).
    t0 : float, optional
        Freezing time (time units of the dynamics); required unless ``source`` is a
        frozen run (then it must agree with the run's, if given).
    times : array_like, optional
        Times to record after ``t0`` when simulating (default: the configuration's record
        times after ``t0``); they become ``dynamics.duration`` and ``record.times``.
    members, seed : int, optional
        Ensemble size and seed of the simulated ensemble (default: the configuration's).
    x_train, y_train, x_test, y_test : ndarray, optional
        Explicit stimuli and targets. With a frozen or source run the targets come from
        the run and only ``x_train``/``x_test`` are used (see :func:`run_stimuli`).
    refine : float
        Passed to :func:`drift.theory.frozen_readout`.
    progress : bool
        Progress bar of the simulation.

    Returns
    -------
    xarray.Dataset
        Over ``time`` (recorded times ``>= t0``) and ``stimulus``: ``output_measured``,
        ``output_se``, ``output_theory`` (frozen prediction), ``output_theory_error``,
        ``output_z``; ``output_learning_theory`` (:func:`drift.theory.mean_predictor`, the
        mean output had learning continued); ``accuracy_measured``, ``accuracy_se``,
        ``accuracy_theory`` (time, split_name); summary ``max_abs_z`` etc. over
        ``quantity``. Attributes ``freeze_time``, ``members``, ``max_abs_z``, ``config``.

    Raises
    ------
    ValueError
        Missing ``t0``, a ``t0`` that disagrees with the frozen run's, or stimuli that
        cannot be rebuilt.
    """
    from drift.simulate import simulate

    if isinstance(source, xr.Dataset) and "freeze_readout_at" in source.attrs:
        frozen = check_run(source, "source")
        t_freeze = float(frozen.attrs["freeze_readout_at"])
        cfg = run_config(frozen)
        if t0 is not None and abs(float(t0) - t_freeze) > 0.5 * cfg.dynamics.dt:
            raise ValueError(f"t0={t0} differs from the run's freeze_readout_at={t_freeze}")
        data = run_stimuli(frozen, x_train=x_train, x_test=x_test)
    else:
        if t0 is None:
            raise ValueError("t0 is required unless source is a frozen-readout run")
        t0 = float(t0)
        if isinstance(source, xr.Dataset):
            check_run(source, "source")
            cfg = run_config(source)
            data = run_stimuli(source, x_train=x_train, x_test=x_test)
            explicit = source.attrs.get("data_name") == "arrays"
        else:
            cfg = load_config(source)
            explicit = x_train is not None
            data = None
        if times is None:
            rec = np.asarray(cfg.record_times(), dtype=np.float64)
            times = rec[rec >= t0]
        times = np.asarray(times, dtype=np.float64).ravel()
        if times.size == 0 or np.any(times < t0):
            raise ValueError(f"times must be non-empty and >= t0={t0}")
        tree = _frozen_config(cfg, t0, times, members, seed)
        arrays = {}
        if explicit:
            if data is None:
                if y_train is None:
                    raise ValueError("pass y_train (and y_test) with x_train")
                data = Dataset(np.asarray(x_train, float), np.asarray(y_train, float),
                               np.zeros((0, np.shape(x_train)[1])) if x_test is None
                               else np.asarray(x_test, float),
                               np.zeros(0) if y_test is None else np.asarray(y_test, float))
            arrays = dict(x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
                          y_test=data.y_test)
        frozen = simulate(tree, freeze_readout_at=t0, progress=progress, **arrays)
        if data is None:
            data = run_stimuli(frozen)
        t_freeze = float(frozen.attrs["freeze_readout_at"])
        cfg = run_config(frozen)

    params = theory_parameters(cfg)
    all_times = np.asarray(frozen["time"].values, dtype=np.float64)
    after = all_times[all_times >= t_freeze - 1e-9 * max(t_freeze, 1.0)]
    if after.size == 0:
        raise ValueError(f"the run records no time >= t0={t_freeze}")
    sel = frozen.sel(time=after)
    out = sel["output"].transpose("time", "member", "stimulus").values.astype(np.float64)
    o_mean, o_se = _mean_se(out, 1)
    th = frozen_readout(data.x_train, data.y_train, data.x_test, t_freeze, after,
                        y_test=data.y_test, refine=refine, **params)
    learning = mean_predictor(data.x_train, data.y_train, data.x_test, after,
                              y_test=data.y_test, refine=refine, **params)
    ds = xr.Dataset(coords=_coords(frozen, after))
    o_th, o_err = th["output_frozen"].values, th["output_frozen_error"].values
    _put(ds, "output", ("time", "stimulus"), o_mean, o_se, o_th, o_err,
         what=f"output with the readout frozen at t0 = {t_freeze:.6g}", units="target units")
    ds["output_theory_error"] = (("time", "stimulus"), o_err,
                                 {"units": "target units",
                                  "long_name": "estimated numerical error of the prediction"})
    ds["output_learning_theory"] = (("time", "stimulus"), learning["output_mean"].values,
                                    {"units": "target units",
                                     "long_name": "NDK mean output had learning continued"})
    split = split_labels(frozen)
    target = np.asarray(frozen["target"].values, dtype=np.float64)
    a_mean, a_se = _mean_se(_accuracy(out, target, split), 1)
    ds = ds.assign_coords(split_name=("split_name", _splits(split)))
    adims = ("time", "split_name")
    ds["accuracy_measured"] = (adims, a_mean, {"units": "1", "long_name":
                                               "frozen-readout accuracy, mean over members"})
    ds["accuracy_se"] = (adims, a_se, {"units": "1", "long_name": "standard error over members"})
    ds["accuracy_theory"] = (adims, _accuracy(o_th, target, split),
                             {"units": "1", "long_name": "accuracy of the NDK frozen output"})
    ds = _summary(ds, ["output"])
    ds.attrs.update(freeze_time=t_freeze, members=int(frozen.sizes["member"]),
                    theory_error_estimate=float(th.attrs.get("error_estimate", np.nan)),
                    config=config_to_yaml(cfg))
    return ds


# ------------------------------------------------------------------------- fixed decoder


def fixed_decoder_beside_theory(
    run: xr.Dataset,
    t0: float | None = None,
    layer: int | None = None,
    alpha: float = 0.1,
    *,
    x_train: np.ndarray | None = None,
    x_test: np.ndarray | None = None,
) -> xr.Dataset:
    """A ridge decoder fitted on a hidden layer at ``t0``, beside the NDK prediction.

    Per member the decoder is the kernel regression of THEORY.md section 6 on the
    recorded units, ``d(x, t) = k_t(x, X) (K + alpha I)^-1 Y`` with
    ``k_t(x, x') = (1/N_rec) sum_i phi_i(x, t) phi_i(x', t0)`` and ``K = k_t0(X, X)`` on
    the training stimuli ``X``; its mean over members is compared with the prediction
    ``Sig_l((x, t), (X, t0)) (Sig_l(t0, t0)(X, X) + alpha I)^-1 Y`` in standard errors
    over members. The decoder is the decision function of the analyses' ridge decoder
    (:func:`analyses.readout.fixed_decoder` with ``fit_intercept=False``, features scaled
    by ``1/sqrt(N_rec)``), whose held-out accuracy is reported too. The ridge inverse of a
    finite-width kernel makes the member mean biased by ``O(1 / N_rec)``; small ``alpha``
    (an ill-conditioned ``K``) amplifies that bias.

    Parameters
    ----------
    run : xarray.Dataset
        A simulation run.
    t0 : float, optional
        Fitting time (nearest recorded time); default the first.
    layer : int, optional
        Recorded layer read by the decoder (default the deepest recorded).
    alpha : float
        Ridge penalty (> 0) in units of the 1/N-normalised kernel.
    x_train, x_test : ndarray, optional
        Stimuli of a run made from explicit arrays (see :func:`run_stimuli`).

    Returns
    -------
    xarray.Dataset
        ``decoder_measured``, ``decoder_se``, ``decoder_theory``, ``decoder_z`` over
        (``time``, ``stimulus``) (all stimuli, train and test); ``accuracy_measured``,
        ``accuracy_se`` (analyses' ridge decoder, tested on the test stimuli, or on the
        training stimuli when the run has none) and ``accuracy_theory`` (sign of the
        predicted decoder output on the same stimuli) over ``time``; summary over
        ``quantity``. Attributes ``fit_time``, ``layer``, ``alpha``, ``max_abs_z``,
        ``accuracy_stimuli`` (``"test"`` or ``"train"``).
    """
    check_run(run, need_output=False)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be > 0 (got {alpha})")
    cfg = run_config(run)
    data = run_stimuli(run, x_train=x_train, x_test=x_test)
    params = theory_parameters(cfg)
    times = np.asarray(run["time"].values, dtype=np.float64)
    i0 = _nearest_index(times, t0, "t0")
    t_fit = float(times[i0])
    if layer is None:
        layer = int(run["layer"].values[-1])
    else:
        layer = _resolve_layers(run, layer)[0]
    lact = run["activity"].sel(layer=layer)
    p = data.y_train.size
    if p == 0:
        raise ValueError("the run has no training stimuli to fit a decoder on")
    n_units = lact.sizes["unit"]
    ref = _slab(lact, time=i0)[:, :, :p]  # (member, unit, P)
    gram = np.einsum("mup,muq->mpq", ref, ref) / n_units
    rhs = np.broadcast_to(data.y_train, (gram.shape[0], p))[..., None]
    coef = np.linalg.solve(gram + alpha * np.eye(p), rhs)[..., 0]  # (member, P)
    dec = np.empty((len(times), ref.shape[0], lact.sizes["stimulus"]))
    for k in range(len(times)):
        a = _slab(lact, time=k)
        dec[k] = np.einsum("mus,mup,mp->ms", a, ref, coef) / n_units
    d_mean, d_se = _mean_se(dec, 1)
    th = fixed_decoder(data.x_train, data.y_train, _stimuli_all(data), t_fit, times,
                       layer=layer, alpha=alpha, **params)
    d_th = th["decoder_output"].values
    ds = xr.Dataset(coords=_coords(run))
    _put(ds, "decoder", ("time", "stimulus"), d_mean, d_se, d_th,
         what=f"ridge decoder fitted at t0 = {t_fit:.6g} on layer {layer}",
         units="target units")

    split = split_labels(run)
    has_test = bool(np.any(split == "test"))
    acc = _decoder_accuracy(lact, t0=t_fit, labels="target", decoder="ridge", alpha=alpha,
                            cv="split" if has_test else None, fit_intercept=False)
    acc = acc["accuracy"].transpose("time", "member").values
    a_mean, a_se = _mean_se(acc, 1)
    on = split == ("test" if has_test else "train")
    target = np.asarray(run["target"].values, dtype=np.float64)
    ds["accuracy_measured"] = ("time", a_mean, {"units": "1", "long_name":
                                                "ridge decoder accuracy, mean over members"})
    ds["accuracy_se"] = ("time", a_se, {"units": "1", "long_name": "standard error over members"})
    ds["accuracy_theory"] = ("time", np.mean(np.sign(d_th[:, on]) == np.sign(target[on]), axis=1),
                             {"units": "1", "long_name": "accuracy of the predicted decoder"})
    ds = _summary(ds, ["decoder"])
    ds.attrs.update(fit_time=t_fit, layer=int(layer), alpha=float(alpha),
                    members=int(run.sizes["member"]), units_recorded=int(n_units),
                    accuracy_stimuli="test" if has_test else "train", config=run.attrs["config"])
    return ds
