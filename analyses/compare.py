"""Model beside brain: drift of a simulated ensemble next to a recording, on one time axis.

:func:`compare_model_to_recording` measures three signatures of representational drift
as functions of elapsed time, on a recording (days) and on the diffusive phase of a
simulation run (time units of the dynamics):

* population-vector (PV) correlation decay (:func:`analyses.drift_rates.pv_correlation`),
* RSA stability, the rank correlation of the RSMs of two sessions
  (:func:`analyses.similarity.rsa`),
* decay of a fixed decoder: trained at one time, tested later
  (:func:`analyses.readout.cross_temporal_decoding`, reduced over forward lags),

and maps the model's time onto days by matching the drift time constants fitted to the
PV correlation curves (:func:`analyses.drift_rates.fit_drift`):
``days per model time unit = tau_recording / tau_model``. The NDK prediction of the
model's PV correlation (:func:`theory_pv_correlation`) is drawn beside it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from analyses._runs import (
    check_run,
    run_config,
    run_stimuli,
    split_labels,
    theory_parameters,
)
from analyses.drift_fit import exp_decay, fit_drift, fit_exponential
from analyses.drift_rates import pv_correlation
from analyses.elapsed import by_elapsed_time
from analyses.readout import cross_temporal_decoding, template_matching
from analyses.similarity import rsa
from drift.theory import get_activation, hidden_kernel, prior_correlation, time_scales

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["compare_model_to_recording", "theory_pv_correlation"]

_CORE = ("time", "unit", "stimulus")


# ---------------------------------------------------------------------------- theory


def theory_pv_correlation(
    x,
    times,
    *,
    layer: int,
    depth: int,
    activation="relu",
    temperature: float,
    prior_variance: float,
    init_variance: float,
    per_stimulus: bool = False,
) -> xr.DataArray:
    """NDK prediction of the population-vector correlation between every pair of times.

    The PV correlation of stimulus ``x`` between ``t`` and ``t'`` is the Pearson
    correlation across units of ``phi_i(x, t)`` and ``phi_i(x, t')``. At infinite width
    the population averages become expectations over the Gaussian pre-activation
    (THEORY.md section 6): ``(1/N) sum_i phi_i phi_i' -> Sig_l(s, s')`` and
    ``(1/N) sum_i phi_i(x, t) -> mu(x, t) = E[phi(u)]``, ``u ~ N(0, Q_l(s, s))`` with
    ``Q_1 = m(t, t) |x|^2 / N0`` and ``Q_l = m(t, t) Sig_(l-1)(s, s)``. Hence, exactly in
    the limit,

        rho(x; t, t') = (Sig_l(s, s') - mu mu')
                        / sqrt((Sig_l(s, s) - mu^2) (Sig_l(s', s') - mu'^2)),

    with ``s = (x, t)``, ``s' = (x, t')``. Finite populations add an ``O(1/N)`` bias.

    Parameters
    ----------
    x : array_like, shape (S, N0)
        Stimuli.
    times : array_like, shape (T,)
        Times (time units of the dynamics, >= 0).
    layer : int
        Hidden layer 1..depth.
    depth, activation, temperature, prior_variance, init_variance
        As in :func:`drift.theory.hidden_kernel`.
    per_stimulus : bool
        Keep the ``stimulus`` dim instead of averaging over stimuli (as
        :func:`analyses.drift_rates.pv_correlation` does).

    Returns
    -------
    xarray.DataArray
        ``([stimulus], time, time_ref)``, dimensionless.
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64).ravel()
    kw = dict(depth=depth, activation=activation, temperature=temperature,
              prior_variance=prior_variance, init_variance=init_variance)
    i, j = np.triu_indices(t.size)
    n_stim = x.shape[0]
    cross = np.empty((i.size, n_stim))  # Sig_l((x, t_i), (x, t_j)), one stimulus at a time
    var = np.empty((t.size, n_stim))  # Sig_l((x, t), (x, t))
    below = np.empty((t.size, n_stim))  # Sig_(l-1)((x, t), (x, t))
    for k in range(n_stim):
        xk = x[k : k + 1]
        cross[:, k] = hidden_kernel(xk, t[i], xk, t[j], layer=layer, **kw)[:, 0, 0]
        var[:, k] = hidden_kernel(xk, t, xk, t, layer=layer, **kw)[:, 0, 0]
        if layer > 1:
            below[:, k] = hidden_kernel(xk, t, xk, t, layer=layer - 1, **kw)[:, 0, 0]
    m = prior_correlation(t, t, temperature=temperature, prior_variance=prior_variance,
                          init_variance=init_variance)
    if layer == 1:
        q = m[:, None] * np.sum(x**2, axis=1)[None, :] / x.shape[1]
    else:
        q = m[:, None] * below
    mu = get_activation(activation).expected_value(q)  # (T, S)
    sd = np.sqrt(np.maximum(var - mu**2, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (cross - mu[i] * mu[j]) / (sd[i] * sd[j])
    full = np.full((t.size, t.size, n_stim), np.nan)
    full[i, j], full[j, i] = r, r
    units = {"units": "time units of the dynamics"}
    da = xr.DataArray(
        np.moveaxis(full, -1, 0), dims=("stimulus", "time", "time_ref"),
        coords={"stimulus": np.arange(n_stim), "time": ("time", t, units),
                "time_ref": ("time_ref", t, units)},
        attrs={"units": "1", "long_name": "NDK population-vector correlation"},
    )
    return da if per_stimulus else da.mean("stimulus").assign_attrs(da.attrs)


# --------------------------------------------------------------------------- inputs


def _recording_activity(recording: object) -> xr.DataArray:
    if isinstance(recording, xr.Dataset):
        if "activity" not in recording:
            raise ValueError("recording has no 'activity' variable")
        arr = recording["activity"]
    elif isinstance(recording, xr.DataArray):
        arr = recording
    else:
        raise ValueError(
            f"recording must be an xarray Dataset or DataArray (got {type(recording).__name__})"
        )
    missing = [d for d in _CORE if d not in arr.dims]
    if missing:
        raise ValueError(f"recording activity must have dims {_CORE}; missing {missing}")
    extra = [d for d in arr.dims if d not in _CORE + ("trial",)]
    if extra:
        raise ValueError(f"recording activity has unexpected dims {extra} (one animal at a time)")
    if arr.sizes["time"] < 4:
        raise ValueError(f"recording needs at least 4 sessions to fit drift "
                         f"(got {arr.sizes['time']})")
    return arr.astype(np.float64)


def _pseudo_trials(arr: xr.DataArray) -> xr.DataArray | None:
    """Trials pooled into ``k`` interleaved groups (trial ``r`` -> group ``r % k``).

    Single trials of a session often miss stimuli (e.g. frames excluded while the animal
    was still); group means over the trials with data fill them. The largest ``k`` in
    ``min(4, trials) .. 2`` with a response for every session, stimulus and group is
    used; None when even two groups leave a gap.
    """
    n = arr.sizes["trial"]
    for k in range(min(4, n), 1, -1):
        group = xr.DataArray(np.arange(n) % k, dims="trial", name="group")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pooled = arr.groupby(group).mean("trial", skipna=True)
        pooled = pooled.rename(group="trial")
        if bool(pooled.notnull().any("unit").all().item()):
            return pooled.assign_coords(trial=np.arange(k))
    return None


def _diffusive_window(run: xr.Dataset, start: float | None, gradient_times: float,
                      x_train: np.ndarray, params: dict) -> tuple[float, np.ndarray]:
    times = np.asarray(run["time"].values, dtype=np.float64)
    if start is None:
        scales = time_scales(x_train, **params)
        start = gradient_times * float(scales["gradient_time"])
    sel = times[times >= start]
    if sel.size < 4:
        raise ValueError(
            f"diffusive_start={start:.4g}: only {sel.size} recorded times of the run lie at or "
            "after it (4 needed); pass an earlier diffusive_start or record more times"
        )
    return float(start), sel


# ------------------------------------------------------------------------ reductions


def _by_lag(mat: xr.DataArray, bins) -> xr.DataArray:
    """Mean over forward pairs at each elapsed time, bins for lags > 0, lag 0 its own point.

    ``mat`` (batch..., time, time_ref) -> (batch..., elapsed).
    """
    mat = mat.transpose(..., "time", "time_ref")
    pos = by_elapsed_time(mat.rename("v"), bins=bins, lags="forward", zero_lag=False)["v"]
    pos = pos.transpose(..., "elapsed")
    pos = pos.drop_vars([c for c in pos.coords if c != "elapsed"])
    diag = np.diagonal(mat.values, axis1=-2, axis2=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN diagonal
        zero = np.nanmean(diag, axis=-1)
    z = xr.DataArray(zero[..., None], dims=pos.dims, coords={"elapsed": [0.0]})
    return xr.concat([z, pos], "elapsed")


def _member_mean(curve: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over ``member``; curve (member, elapsed) -> (elapsed,)."""
    c = curve.transpose("member", "elapsed").values
    n = np.isfinite(c).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(c, axis=0)
        sd = np.nanstd(c, axis=0, ddof=1)
    return mean, np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), np.nan)


def _recording_decoder(arr: xr.DataArray, labels: str | None, alpha: float, seed: int):
    """Cross-temporal accuracy matrix, chance level and a description, for a recording."""
    has_trials = "trial" in arr.dims and arr.sizes["trial"] >= 2
    if labels is None:
        target = arr["target"].values if "target" in arr.coords else np.array([np.nan])
        known = target[np.isfinite(target)] if target.dtype.kind == "f" else target
        labels = "stimulus" if has_trials else ("target" if np.unique(known).size > 1
                                                else None)
    pseudo = _pseudo_trials(arr) if has_trials else None
    if labels is None or (labels == "stimulus" and has_trials and pseudo is None):
        res = template_matching(arr)
        return res["accuracy"], res.attrs["chance"], "template matching of stimulus identity"
    if pseudo is not None:
        arr, cv = pseudo, pseudo.sizes["trial"]
        what = f"ridge decoder of {labels!r}, cross-validated over {cv} groups of trials"
    else:
        if "trial" in arr.dims:
            arr = arr.mean("trial", skipna=True)
        split = split_labels(arr)
        cv = "split" if {"train", "test"} <= set(split) else 5
        what = f"ridge decoder of {labels!r} (cv={cv})"
    res = cross_temporal_decoding(arr, labels=labels, decoder="ridge", alpha=alpha, cv=cv,
                                  seed=seed)
    return res["accuracy"], res.attrs["chance"], what


def _model_decoder(act: xr.DataArray, alpha: float, cv, seed: int):
    res = cross_temporal_decoding(act, labels="target", decoder="ridge", alpha=alpha, cv=cv,
                                  seed=seed)
    tested = "the training stimuli" if cv is None else f"cv={cv}"
    return res["accuracy"], res.attrs["chance"], f"ridge decoder of 'target' ({tested})"


def _boot_ratio(fit_a: xr.Dataset, fit_b: xr.Dataset, ci: float) -> tuple[float, float]:
    a = np.asarray(fit_a["tau_d_boot"].values, float).ravel()
    b = np.asarray(fit_b["tau_d_boot"].values, float).ravel()
    n = min(a.size, b.size)
    if n == 0:
        return (np.nan, np.nan)
    r = a[:n] / b[:n]
    r = r[np.isfinite(r)]
    if r.size == 0:
        return (np.nan, np.nan)
    lo = (1 - ci) / 2
    return float(np.quantile(r, lo)), float(np.quantile(r, 1 - lo))


# ----------------------------------------------------------------------- entry point


def compare_model_to_recording(
    recording: xr.Dataset | xr.DataArray,
    run: xr.Dataset,
    *,
    layer: int | None = None,
    n_boot: int = 200,
    ci: float = 0.95,
    diffusive_start: float | None = None,
    gradient_times: float = 3.0,
    recording_bins: int | Sequence[float] | None = None,
    model_bins: int | Sequence[float] | None = None,
    recording_labels: str | None = None,
    decoder_alpha: float = 1.0,
    model_cv: int | str | None = None,
    theory: bool = True,
    x_train: np.ndarray | None = None,
    x_test: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[xr.Dataset, Figure]:
    """Drift of a simulated ensemble next to a recording, with the model's time in days.

    **Recording.** Trials (if any) are averaged for the PV and RSA measures. The PV
    correlation curve is fitted with :func:`analyses.drift_rates.fit_drift`
    (``measure="pv"``, ``bins=recording_bins``, ``n_boot``, ``ci``, ``seed``), giving
    ``tau_recording`` (days). The decoder decodes stimulus identity over trials, pooled into
    2-4 interleaved groups so that every session and stimulus has a response in each
    group, cross-validated over the groups; without trials it decodes the ``target``
    coordinate; it falls back to template matching
    (:func:`analyses.readout.template_matching`) when neither is possible.

    **Model.** Layer ``layer`` of the run, at the recorded times ``t >= diffusive_start``
    (default ``gradient_times`` times the gradient time ``1 / max eig NTK`` of
    :func:`drift.theory.time_scales`, i.e. after the gradient-driven phase). Its PV curve,
    averaged over members, is fitted the same way (``bins=model_bins``, members resampled
    jointly with units) giving ``tau_model`` (time units of the dynamics). The decoder
    is a ridge decoder of the binary ``target`` fitted on all stimuli at one time and
    applied to the same stimuli later (``model_cv=None``: a network has no trial-to-trial
    noise, so the question is whether a reader fixed at one time still reads the same
    stimuli after the representation drifted, as in THEORY.md section 6); pass
    ``model_cv="split"`` to test on held-out stimuli instead.

    **Time mapping.** ``days_per_model_time = tau_recording / tau_model``: model elapsed
    times are multiplied by it (coordinate ``elapsed_model_days``); its interval is the
    ``ci`` quantile range of the ratio of the two bootstrap distributions.

    **Theory.** The model's PV correlation predicted by the NDK at the same pairs of
    times (:func:`theory_pv_correlation`, exact at infinite width: it uses ``Sig_l`` and
    the mean activity ``E[phi]``), reduced over elapsed time like the measurement.

    Every curve holds lag 0 as its own point (PV and RSA are 1 there by construction; the
    decoder's value is its cross-validated same-session accuracy); ``bins`` group the
    lags > 0.

    Parameters
    ----------
    recording : xarray.Dataset or xarray.DataArray
        A recording in the project format: ``activity`` over (``time`` [days], ``unit``,
        ``stimulus``[, ``trial``]), at least 4 sessions.
    run : xarray.Dataset
        A simulation run (``activity (time, member, layer, unit, stimulus)``, attribute
        ``config``).
    layer : int, optional
        Recorded model layer (default the deepest recorded).
    n_boot : int
        Bootstrap resamples of each drift fit.
    ci : float
        Confidence level of the intervals.
    diffusive_start : float, optional
        First model time of the comparison (time units of the dynamics).
    gradient_times : float
        Multiple of the gradient time used when ``diffusive_start`` is not given.
    recording_bins, model_bins : int or sequence of float, optional
        Elapsed-time bins of lags > 0 (see :func:`analyses.elapsed.lag_bins`); default one
        point per distinct lag.
    recording_labels : str, optional
        Labels the recording decoder decodes (``"stimulus"``, ``"target"`` or another
        coordinate on ``stimulus``); default chosen as described above.
    decoder_alpha : float
        Ridge penalty of both decoders.
    model_cv : int, "split" or None
        Cross-validation of the model decoder (see
        :func:`analyses.readout.cross_temporal_decoding`).
    theory : bool
        Compute and draw the NDK prediction.
    x_train, x_test : ndarray, optional
        Stimuli of a run made from explicit arrays (see :func:`analyses.theory.run_stimuli`).
    seed : int
        Seed of the bootstrap and of the cross-validation folds.

    Returns
    -------
    dataset : xarray.Dataset
        Over ``elapsed_recording`` (days) and ``elapsed_model`` (time units of the
        dynamics, with coordinate ``elapsed_model_days``): ``pv_recording``,
        ``pv_recording_fit``, ``rsa_recording``, ``decoder_recording`` (accuracy) and
        ``decoder_recording_normalised`` (``(acc - chance) / (1 - chance)``);
        ``pv_model``, ``pv_model_se``, ``pv_model_fit``, ``pv_theory``, ``rsa_model``,
        ``rsa_model_se``, ``decoder_model``, ``decoder_model_se``,
        ``decoder_model_normalised`` (SE over members). Scalars ``tau_recording``,
        ``tau_model``, ``tau_theory`` (fit of ``pv_theory``), ``days_per_model_time`` and
        their intervals (dim ``bound``). Attributes state the mapping (``mapping``), the
        window (``diffusive_start``), ``layer``, the decoders and chance levels.
    figure : matplotlib.figure.Figure
        Three panels (PV correlation, RSA stability, decoder accuracy above chance) versus
        elapsed days, recording and mapped model, with the NDK line on the first; the
        mapping is stated in the title and a top axis in model time. Not shown.

    Raises
    ------
    ValueError
        ``recording`` lacks the ``time``/``unit``/``stimulus`` dims or has fewer than 4
        sessions; ``run`` is not a simulation run; too few model times after
        ``diffusive_start``; a drift fit fails.
    """
    rec = _recording_activity(recording)
    check_run(run, "run", need_output=False)
    cfg = run_config(run)
    params = theory_parameters(cfg)
    data = run_stimuli(run, x_train=x_train, x_test=x_test)
    if layer is None:
        layer = int(run["layer"].values[-1])
    elif int(layer) not in [int(v) for v in run["layer"].values]:
        raise ValueError(f"layer {layer} is not recorded in run (recorded: "
                         f"{[int(v) for v in run['layer'].values]})")
    start, window = _diffusive_window(run, diffusive_start, gradient_times, data.x_train, params)
    act = run["activity"].sel(layer=int(layer)).sel(time=window)
    act = act.transpose("time", "member", "unit", "stimulus").astype(np.float64).compute()
    rec_mean = rec.mean("trial", skipna=True) if "trial" in rec.dims else rec

    # PV correlation and fits
    fit_rec = fit_drift(rec_mean, "pv", bins=recording_bins, n_boot=n_boot, ci=ci, seed=seed)
    fit_mod = fit_drift(act, "pv", bins=model_bins, n_boot=n_boot, ci=ci, seed=seed)
    tau_rec, tau_mod = float(fit_rec["tau_d"]), float(fit_mod["tau_d"])
    if not (np.isfinite(tau_rec) and np.isfinite(tau_mod)):
        which = "recording" if not np.isfinite(tau_rec) else "run"
        raise ValueError(f"{which}: the PV correlation decay could not be fitted "
                         "(too few sessions or no decay)")
    scale = tau_rec / tau_mod
    scale_ci = _boot_ratio(fit_rec, fit_mod, ci)

    pv_rec = _by_lag(pv_correlation(rec_mean)["correlation"], recording_bins)
    pv_mod = _by_lag(pv_correlation(act)["correlation"], model_bins)
    rsa_rec = _by_lag(rsa(rec_mean)["rsa"], recording_bins)
    rsa_mod = _by_lag(rsa(act)["rsa"], model_bins)
    dec_rec, chance_rec, what_rec = _recording_decoder(rec, recording_labels, decoder_alpha, seed)
    dec_mod, chance_mod, what_mod = _model_decoder(act, decoder_alpha, model_cv, seed)
    dec_rec = _by_lag(dec_rec, recording_bins)
    dec_mod = _by_lag(dec_mod, model_bins)

    el_rec = pv_rec["elapsed"].values
    el_mod = pv_mod["elapsed"].values
    ds = xr.Dataset(
        coords={
            "elapsed_recording": ("elapsed_recording", el_rec,
                                  {"units": rec["time"].attrs.get("units", "days"),
                                   "long_name": "elapsed time between sessions"}),
            "elapsed_model": ("elapsed_model", el_mod,
                              {"units": "time units of the dynamics",
                               "long_name": "elapsed model time"}),
            "elapsed_model_days": ("elapsed_model", el_mod * scale,
                                   {"units": "days", "long_name": "elapsed model time mapped "
                                    "to days (x days_per_model_time)"}),
            "bound": ["low", "high"],
        }
    )

    def put(name, dims, values, long_name, units="1"):
        ds[name] = (dims, np.asarray(values, dtype=float), {"units": units,
                                                            "long_name": long_name})

    r, m = ("elapsed_recording",), ("elapsed_model",)
    p_rec = {k: float(fit_rec[k]) for k in ("c_0", "c_inf", "tau_d")}
    p_mod = {k: float(fit_mod[k]) for k in ("c_0", "c_inf", "tau_d")}
    put("pv_recording", r, pv_rec.values, "PV correlation, recording")
    put("pv_recording_fit", r, exp_decay(el_rec, **p_rec), "exponential fit, recording")
    put("rsa_recording", r, rsa_rec.values, "RSA stability (Spearman), recording")
    put("decoder_recording", r, dec_rec.values, f"fixed-decoder accuracy, recording: {what_rec}")
    put("decoder_recording_normalised", r, (dec_rec.values - chance_rec) / (1 - chance_rec),
        "decoder accuracy above chance, (acc - chance) / (1 - chance), recording")
    for name, curve, long_name in (
        ("pv_model", pv_mod, "PV correlation, model"),
        ("rsa_model", rsa_mod, "RSA stability (Spearman), model"),
        ("decoder_model", dec_mod, f"fixed-decoder accuracy, model: {what_mod}"),
    ):
        mean, se = _member_mean(curve)
        put(name, m, mean, f"{long_name}, mean over members")
        put(f"{name}_se", m, se, f"{long_name}, standard error over members")
    put("pv_model_fit", m, exp_decay(el_mod, **p_mod), "exponential fit, model")
    put("decoder_model_normalised", m, (ds["decoder_model"].values - chance_mod)
        / (1 - chance_mod), "decoder accuracy above chance, (acc - chance) / (1 - chance), model")

    tau_theory = np.nan
    if theory:
        x_all = np.concatenate([data.x_train, data.x_test])
        th = theory_pv_correlation(x_all, window, layer=int(layer), **params)
        th_curve = _by_lag(th, model_bins)
        put("pv_theory", m, th_curve.values, "PV correlation, NDK prediction (infinite width)")
        pos = el_mod > 0
        tau_theory = fit_exponential(el_mod[pos], th_curve.values[pos])[2]

    units_t = "time units of the dynamics"
    put("tau_recording", (), tau_rec, "drift time constant of the recording's PV correlation",
        "days")
    put("tau_recording_ci", ("bound",), fit_rec["tau_d_ci"].values, "interval of tau_recording",
        "days")
    put("tau_model", (), tau_mod, "drift time constant of the model's PV correlation", units_t)
    put("tau_model_ci", ("bound",), fit_mod["tau_d_ci"].values, "interval of tau_model", units_t)
    put("tau_theory", (), tau_theory, "drift time constant of the NDK PV correlation", units_t)
    put("days_per_model_time", (), scale, "days per model time unit, tau_recording / tau_model",
        "days per time unit")
    put("days_per_model_time_ci", ("bound",), scale_ci, "interval of days_per_model_time",
        "days per time unit")
    mapping = (f"1 model time unit = {scale:.4g} days (tau_recording = {tau_rec:.4g} days / "
               f"tau_model = {tau_mod:.4g} time units, fitted PV-correlation decays)")
    ds.attrs.update(
        mapping=mapping,
        diffusive_start=start,
        model_times=window,
        layer=int(layer),
        n_boot=int(n_boot),
        ci=float(ci),
        recording_decoder=what_rec,
        model_decoder=what_mod,
        recording_chance=float(chance_rec),
        model_chance=float(chance_mod),
        model_fit=f"c_0 = {p_mod['c_0']:.4g}, c_inf = {p_mod['c_inf']:.4g}",
        recording_fit=f"c_0 = {p_rec['c_0']:.4g}, c_inf = {p_rec['c_inf']:.4g}",
        config=run.attrs["config"],
    )
    return ds, _figure(ds)


# --------------------------------------------------------------------------- figure


def _points(ax, x, mean, se, color, label, marker) -> None:
    """Markers with +-1 SE error bars (no connecting line: lags of a log-spaced schedule
    come from different reference times and need not be monotonic)."""
    yerr = se if np.isfinite(se).any() else None
    ax.errorbar(x, mean, yerr=yerr, fmt=marker, ms=4, color=color, elinewidth=0.8,
                capsize=0, label=label)


def _figure(ds: xr.Dataset) -> Figure:
    import matplotlib.pyplot as plt  # plotting libraries load only when a figure is drawn
    import seaborn as sns

    scale = float(ds["days_per_model_time"])
    er = ds["elapsed_recording"].values
    em = ds["elapsed_model_days"].values
    c_rec, c_mod = "C0", "C1"
    with sns.axes_style("ticks"):
        fig, axes = plt.subplots(1, 3, figsize=(13.0, 4.0), layout="constrained")
    pos_r, pos_m = er > 0, em > 0
    ax = axes[0]
    ax.plot(er[pos_r], ds["pv_recording"].values[pos_r], "o", color=c_rec, ms=5,
            label="recording")
    ax.plot(er, ds["pv_recording_fit"].values, "-", color=c_rec, lw=1,
            label=f"fit: $\\tau$ = {float(ds['tau_recording']):.3g} d")
    _points(ax, em[pos_m], ds["pv_model"].values[pos_m], ds["pv_model_se"].values[pos_m],
            c_mod, "model (mapped, $\\pm$1 SE)", "s")
    ax.plot(em, ds["pv_model_fit"].values, "-", color=c_mod, lw=1,
            label=f"fit: $\\tau$ = {float(ds['tau_model']):.3g} time units")
    if "pv_theory" in ds:
        ax.plot(em[pos_m], ds["pv_theory"].values[pos_m], "--", color="C3", lw=1.5,
                label="NDK theory (model)")
    ax.set_ylabel("PV correlation")
    ax.set_title("population-vector correlation", fontsize="medium")

    ax = axes[1]
    ax.plot(er[pos_r], ds["rsa_recording"].values[pos_r], "o-", color=c_rec, ms=5, lw=1.2,
            label="recording")
    _points(ax, em[pos_m], ds["rsa_model"].values[pos_m], ds["rsa_model_se"].values[pos_m],
            c_mod, "model (mapped, $\\pm$1 SE)", "s")
    ax.set_ylabel("RSA stability (Spearman $\\rho$ of RSMs)")
    ax.set_title("representational similarity", fontsize="medium")

    ax = axes[2]
    ax.plot(er, ds["decoder_recording_normalised"].values, "o-", color=c_rec, ms=5, lw=1.2,
            label=f"recording (chance {ds.attrs['recording_chance']:.2g})")
    se = ds["decoder_model_se"].values / (1 - ds.attrs["model_chance"])
    _points(ax, em, ds["decoder_model_normalised"].values, se, c_mod,
            f"model (mapped, $\\pm$1 SE; chance {ds.attrs['model_chance']:.2g})", "s")
    ax.axhline(0.0, color="k", lw=0.8, ls=":", label="chance")
    ax.set_ylabel("decoder accuracy above chance\n(acc - chance) / (1 - chance)")
    ax.set_title("fixed decoder (trained at the earlier session)", fontsize="medium")

    for ax in axes:
        ax.set_xlabel("elapsed time (days)")
        ax.set_xlim(left=0)
        top = ax.secondary_xaxis("top", functions=(lambda d: d / scale, lambda t: t * scale))
        top.set_xlabel("elapsed model time (time units)", fontsize="small")
        ax.legend(frameon=False, fontsize="small")
        sns.despine(ax=ax, top=False)
    fig.suptitle(f"model layer {ds.attrs['layer']} (t $\\geq$ {ds.attrs['diffusive_start']:.3g}) "
                 f"vs recording: 1 model time unit = {scale:.3g} days "
                 f"($\\tau_{{rec}}$ / $\\tau_{{model}}$)", fontsize="medium")
    return fig
