"""Readout of drifting representations: fixed, retrained and cross-temporal decoders.

Decoders are scikit-learn linear classifiers trained on the population vectors of one
time and tested at others:

* :func:`cross_temporal_decoding`: train at every ``time_ref``, test at every ``time``;
* :func:`fixed_decoder`: trained once at ``t0`` and applied later (a fixed reader);
* :func:`retrained_decoder`: retrained at every time (the best reader);
* :func:`template_matching`: the "time-lapse" decoder, no training: a stimulus at one
  session is decoded as the stimulus of the reference session whose population vector
  correlates best;
* :func:`output_accuracy`: a simulated network's own output, ``sign(output)`` vs ``target``.

Features are the units finite at both the training and the test time (a decoder is
refitted on the shared units when a test session lacks some), scaled by ``1/sqrt(N)`` so
that the ridge decoder is the kernel regression of THEORY.md section 6 with the
population kernel ``(1/N) sum_i r_i r_i'`` and penalty ``alpha``. Cross-validation uses
the same folds at every time: over trials when the data have a ``trial`` dim, otherwise
over stimuli (stratified by label), or the ``split`` coordinate's train/test stimuli.
Batch dims (``member``, ``layer``) are looped over, one element loaded at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from analyses._data import activity, batch_dims, ref_copy, with_time_coords
from analyses.pairwise import count, pairwise_sums, pearson

__all__ = [
    "cross_temporal_decoding",
    "fixed_decoder",
    "retrained_decoder",
    "template_matching",
    "output_accuracy",
]


def _labels(arr: xr.DataArray, labels: str | Sequence | np.ndarray) -> np.ndarray:
    """Label of every stimulus (NaN / None for unknown)."""
    if isinstance(labels, str):
        if labels == "stimulus":
            return np.arange(arr.sizes["stimulus"], dtype=float)
        if labels not in arr.coords or arr[labels].dims != ("stimulus",):
            raise ValueError(f"labels {labels!r} is not a coordinate on 'stimulus'")
        y = arr[labels].values
    else:
        y = np.asarray(labels)
        if y.shape != (arr.sizes["stimulus"],):
            raise ValueError(f"labels must have one entry per stimulus ({arr.sizes['stimulus']})")
    return y


def _known(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind == "f":
        return np.isfinite(y)
    return np.array([v is not None for v in y])


def _estimator(decoder: str, alpha: float, fit_intercept: bool, standardize: bool):
    if decoder == "ridge":
        est = RidgeClassifier(alpha=alpha, fit_intercept=fit_intercept)
    elif decoder == "logistic":
        est = LogisticRegression(C=1.0 / alpha, fit_intercept=fit_intercept, max_iter=2000)
    else:
        raise ValueError(f"decoder must be 'ridge' or 'logistic', got {decoder!r}")
    return make_pipeline(StandardScaler(), est) if standardize else est


def _folds(
    y: np.ndarray, split: np.ndarray | None, n_trials: int, cv, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train / test masks of shape (S, R) for each fold."""
    s = y.size
    full = np.ones((s, n_trials), bool)
    if cv is None:
        return [(full, full)]
    if isinstance(cv, str):
        if cv != "split" or split is None:
            raise ValueError("cv='split' needs a 'split' coordinate on 'stimulus'")
        tr, te = split == "train", split == "test"
        if not tr.any() or not te.any():
            raise ValueError("cv='split' needs both 'train' and 'test' stimuli")
        return [(full & tr[:, None], full & te[:, None])]
    k = int(cv)
    if n_trials > 1:
        if k > n_trials:
            raise ValueError(f"cv={k} folds over trials, but only {n_trials} trials")
        out = []
        for tr, te in KFold(k, shuffle=True, random_state=seed).split(np.arange(n_trials)):
            a, b = np.zeros((s, n_trials), bool), np.zeros((s, n_trials), bool)
            a[:, tr], b[:, te] = True, True
            out.append((a, b))
        return out
    _, cnt = np.unique(y, return_counts=True)
    if cnt.min() < k:
        raise ValueError(
            f"cv={k} folds over stimuli needs >= {k} stimuli per label; decoding stimulus "
            "identity needs a 'trial' dim"
        )
    out = []
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(s), y):
        a, b = np.zeros((s, 1), bool), np.zeros((s, 1), bool)
        a[tr], b[te] = True, True
        out.append((a, b))
    return out


def _decode_element(x, y, folds, pairs, make) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy of every (train i, test j) pair for one batch element.

    x : (T, U, S, R) activity; y : (S,) labels; pairs : dict i -> list of test times j.
    Returns accuracy and units used, shape (T, T) indexed [j, i] (NaN where not run).

    A sample (stimulus, trial) missing at a time (every unit NaN there: a padded trial, a
    condition never shown in that session) is left out of training or testing at that
    time; a unit is used when it is finite on every sample present at both times.
    """
    t = x.shape[0]
    acc = np.full((t, t), np.nan)
    nun = np.zeros((t, t), dtype=np.int64)
    finite = np.isfinite(x)
    present = finite.any(axis=1)  # (T, S, R)
    valid = np.all(finite | ~present[:, None], axis=(2, 3)) & finite.any(axis=(2, 3))  # (T, U)
    yy = np.broadcast_to(y[:, None], x.shape[2:])
    for i, tests in pairs.items():
        correct = np.zeros(t)
        total = np.zeros(t)
        for train, test in folds:
            cache = {}
            tr = train & present[i]
            if len(np.unique(yy[tr])) < 2:
                continue
            for j in tests:
                use = valid[i] & valid[j]
                nu = int(use.sum())
                nun[j, i] = nu
                te = test & present[j]
                if nu == 0 or not te.any():
                    continue
                key = use.tobytes()
                if key not in cache:
                    xi = x[i][use][:, tr].T / np.sqrt(nu)
                    cache[key] = make().fit(xi, yy[tr])
                xj = x[j][use][:, te].T / np.sqrt(nu)
                pred = cache[key].predict(xj)
                correct[j] += np.sum(pred == yy[te])
                total[j] += te.sum()
        for j in tests:
            if total[j] > 0:
                acc[j, i] = correct[j] / total[j]
    return acc, nun


def _run(
    data,
    pairs_for,
    labels,
    decoder: str,
    alpha: float,
    cv,
    seed: int,
    fit_intercept: bool,
    standardize: bool,
    variable: str,
) -> xr.Dataset:
    arr = activity(data, variable)
    y_all = _labels(arr, labels)
    keep = _known(y_all)
    arr = arr.isel(stimulus=np.flatnonzero(keep))
    y = y_all[keep]
    has_trial = "trial" in arr.dims
    split = arr["split"].values if "split" in arr.coords else None
    n_trials = arr.sizes["trial"] if has_trial else 1
    folds = _folds(y, split, n_trials, cv, seed)

    def make():
        return _estimator(decoder, alpha, fit_intercept, standardize)

    bdims = batch_dims(arr, "trial")
    order = ["time", "unit", "stimulus"] + (["trial"] if has_trial else [])
    shape = tuple(arr.sizes[d] for d in bdims)
    t = arr.sizes["time"]
    acc = np.full(shape + (t, t), np.nan)
    nun = np.zeros(shape + (t, t), dtype=np.int64)
    pairs = pairs_for(t)
    for idx in np.ndindex(shape):
        el = arr.isel(dict(zip(bdims, idx, strict=True))).transpose(*order).values
        if not has_trial:
            el = el[..., None]
        acc[idx], nun[idx] = _decode_element(el, y, folds, pairs, make)
    dims = bdims + ["time", "time_ref"]
    coords = {d: arr[d] for d in bdims if d in arr.coords}
    _, cnt = np.unique(y, return_counts=True)
    accuracy = xr.DataArray(acc, dims=dims, coords=coords)
    n_units = xr.DataArray(nun, dims=dims, coords=coords)
    return xr.Dataset(
        {
            "accuracy": with_time_coords(accuracy, arr).assign_attrs(
                long_name=f"decoding accuracy ({decoder})", units="1"
            ),
            "n_units": with_time_coords(n_units, arr).assign_attrs(long_name="units used"),
        },
        attrs={
            "decoder": decoder,
            "alpha": alpha,
            "cv": str(cv),
            "chance": float(cnt.max() / cnt.sum()),
        },
    )


_DOC_PARAMS = """
    labels : str or array-like
        What to decode: a coordinate on ``stimulus`` (default ``"target"``; stimuli with
        NaN labels are left out), ``"stimulus"`` for stimulus identity (needs trials), or
        one label per stimulus.
    decoder : {"ridge", "logistic"}
        :class:`sklearn.linear_model.RidgeClassifier` (ridge regression on the label codes,
        the decoder of THEORY.md section 6) or
        :class:`sklearn.linear_model.LogisticRegression` with ``C = 1 / alpha``.
    alpha : float
        Regularisation strength.
    cv : int, "split" or None
        Number of folds (over trials when present, else stratified over stimuli),
        ``"split"`` to train on ``split == "train"`` and test on ``split == "test"``
        stimuli, or ``None`` to test on the training samples.
    seed : int
        Seed of the fold assignment.
    fit_intercept : bool
        Fit an intercept (``False`` matches the kernel form of THEORY.md exactly).
    standardize : bool
        z-score features with the training time's statistics before fitting.
    variable : str
        Activity variable when ``data`` is a Dataset."""


def cross_temporal_decoding(
    data: xr.Dataset | xr.DataArray,
    labels: str | Sequence | np.ndarray = "target",
    decoder: str = "ridge",
    alpha: float = 1.0,
    cv: int | str | None = 5,
    seed: int = 0,
    fit_intercept: bool = True,
    standardize: bool = False,
    variable: str = "activity",
) -> xr.Dataset:
    """Train at every time ``time_ref``, test at every time ``time``.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, [``trial``], batch...).
    {params}

    Returns
    -------
    xarray.Dataset
        ``accuracy`` (batch..., ``time``, ``time_ref``): fraction of held-out samples
        decoded correctly at ``time`` by the decoder trained at ``time_ref``; ``n_units``.
        Attribute ``chance``: the frequency of the most common label.
    """
    return _run(
        data,
        lambda t: {i: list(range(t)) for i in range(t)},
        labels,
        decoder,
        alpha,
        cv,
        seed,
        fit_intercept,
        standardize,
        variable,
    )


def fixed_decoder(
    data: xr.Dataset | xr.DataArray,
    t0: float | None = None,
    labels: str | Sequence | np.ndarray = "target",
    decoder: str = "ridge",
    alpha: float = 1.0,
    cv: int | str | None = 5,
    seed: int = 0,
    fit_intercept: bool = True,
    standardize: bool = False,
    variable: str = "activity",
) -> xr.Dataset:
    """Decoder trained once at ``t0`` and tested at every time (a fixed reader).

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, [``trial``], batch...).
    t0 : float, optional
        Training time (nearest ``time`` value); default the first time.
    {params}

    Returns
    -------
    xarray.Dataset
        ``accuracy`` and ``n_units`` over (batch..., ``time``); scalar coordinate
        ``time_ref`` = training time; attribute ``chance``.
    """
    arr = activity(data, variable)
    i0 = 0 if t0 is None else int(np.abs(arr["time"].values - t0).argmin())
    res = _run(
        arr,
        lambda t: {i0: list(range(t))},
        labels,
        decoder,
        alpha,
        cv,
        seed,
        fit_intercept,
        standardize,
        variable,
    )
    return res.isel(time_ref=i0)


def retrained_decoder(
    data: xr.Dataset | xr.DataArray,
    labels: str | Sequence | np.ndarray = "target",
    decoder: str = "ridge",
    alpha: float = 1.0,
    cv: int | str | None = 5,
    seed: int = 0,
    fit_intercept: bool = True,
    standardize: bool = False,
    variable: str = "activity",
) -> xr.Dataset:
    """Decoder retrained and tested at every time (the best reader).

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, [``trial``], batch...).
    {params}

    Returns
    -------
    xarray.Dataset
        ``accuracy`` and ``n_units`` over (batch..., ``time``); attribute ``chance``.
    """
    res = _run(
        data,
        lambda t: {i: [i] for i in range(t)},
        labels,
        decoder,
        alpha,
        cv,
        seed,
        fit_intercept,
        standardize,
        variable,
    )
    t = res.sizes["time"]
    diag = xr.DataArray(np.arange(t), dims="time")
    return res.isel(time_ref=diag).drop_vars("time_ref")


for _f in (cross_temporal_decoding, fixed_decoder, retrained_decoder):
    if _f.__doc__:  # absent under python -OO
        _f.__doc__ = _f.__doc__.replace("    {params}", _DOC_PARAMS.strip("\n"))


def template_matching(
    data: xr.Dataset | xr.DataArray,
    labels: str | Sequence | np.ndarray | None = None,
    variable: str = "activity",
) -> xr.Dataset:
    """Time-lapse decoder: match each population vector to the reference session's.

    A stimulus at ``time`` is decoded as the stimulus at ``time_ref`` whose population
    vector has the highest Pearson correlation with it (over the units finite for both).
    With a ``trial`` dim, templates are the means of the even trials and probes the means
    of the odd trials, so that ``time == time_ref`` is cross-validated too.

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Activity with dims (``time``, ``unit``, ``stimulus``, batch...).
    labels : None, str or array-like
        ``None``: correct when the matched stimulus is the same stimulus (chance
        ``1/S``). Otherwise a coordinate name or one label per stimulus: correct when
        the matched stimulus has the same label.
    variable : str
        Activity variable when ``data`` is a Dataset.

    Returns
    -------
    xarray.Dataset
        ``accuracy`` (batch..., ``time``, ``time_ref``), ``n_units`` (fewest units used by
        any comparison); attribute ``chance``. Lazy for dask-backed input.
    """
    arr = activity(data, variable)
    if "trial" in arr.dims:
        n = arr.sizes["trial"]
        if n < 2:
            raise ValueError("template matching with trials needs at least 2 trials")
        templates = arr.isel(trial=np.arange(0, n, 2)).mean("trial", skipna=True)
        probes = arr.isel(trial=np.arange(1, n, 2)).mean("trial", skipna=True)
    else:
        templates = probes = arr
    y = np.arange(arr.sizes["stimulus"]) if labels is None else _labels(arr, labels)
    ref = ref_copy(ref_copy(templates, "time"), "stimulus")
    ref = ref.drop_vars([c for c in ref.coords if c not in ref.dims])
    s = pairwise_sums(probes, ref, "stimulus", "stimulus_ref", "unit", shift="vector")
    r = pearson(s)
    best = r.fillna(-np.inf).argmax("stimulus_ref")
    yy = xr.DataArray(y, dims="stimulus")
    lab = np.asarray(y)
    predicted = xr.apply_ufunc(
        lambda i: lab[i], best, dask="parallelized", output_dtypes=[lab.dtype]
    )
    rowok = r.notnull().any("stimulus_ref")
    correct = (predicted == yy).where(rowok)
    acc = correct.mean("stimulus", skipna=True)
    bd = [d for d in acc.dims if d not in ("time", "time_ref")]
    acc = with_time_coords(acc.transpose(*bd, "time", "time_ref"), arr)
    n_units = count(s).min(["stimulus", "stimulus_ref"]).transpose(*bd, "time", "time_ref")
    _, cnt = np.unique(y, return_counts=True)
    return xr.Dataset(
        {
            "accuracy": acc.assign_attrs(long_name="template-matching accuracy", units="1"),
            "n_units": with_time_coords(n_units, arr).assign_attrs(long_name="units used"),
        },
        attrs={"chance": float((cnt / cnt.sum()) @ (cnt / cnt.sum()))},
    )


def output_accuracy(data: xr.Dataset, by_split: bool = True) -> xr.Dataset:
    """Accuracy of a simulated network's own output: ``sign(output) == sign(target)``.

    Parameters
    ----------
    data : xarray.Dataset
        A simulation with the ``output`` variable (``time``, ``member``, ``stimulus``) and
        the ``target`` coordinate (NaN targets are skipped).
    by_split : bool
        Report per value of the ``split`` coordinate (dim ``split``) when present.

    Returns
    -------
    xarray.Dataset
        ``accuracy`` over (``time``, ``member``, [``split``]); ``ensemble_accuracy`` of
        the member-mean output over (``time``, [``split``]).
    """
    if "output" not in data or "target" not in data.coords:
        raise ValueError("output_accuracy needs an 'output' variable and a 'target' coordinate")
    out = data["output"]
    target = data["target"]
    known = np.isfinite(target) & (target != 0)

    def acc(o: xr.DataArray) -> xr.DataArray:
        correct = (np.sign(o) == np.sign(target)).where(known)
        if by_split and "split" in correct.coords:
            return correct.groupby("split").mean("stimulus", skipna=True)
        return correct.mean("stimulus", skipna=True)

    res = xr.Dataset({"accuracy": acc(out)})
    if "member" in out.dims:
        res["ensemble_accuracy"] = acc(out.mean("member"))
    for v in res.data_vars.values():
        v.attrs.update(units="1", long_name="sign agreement of output and target")
    return res
