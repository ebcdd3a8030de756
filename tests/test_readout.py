"""Decoders: consistency, chance on shuffled labels, kernel form, NaN units."""

import numpy as np
import pytest
import xarray as xr

from analyses.readout import (
    cross_temporal_decoding,
    fixed_decoder,
    output_accuracy,
    retrained_decoder,
    template_matching,
)
from analyses.synthetic import ou_population


@pytest.fixture(scope="module")
def decodable():
    return ou_population(
        n_times=5, n_units=60, n_stimuli=60, tau=2.0, floor=0.0, noise=0.5, kappa=0.4, seed=1
    )


def test_fixed_and_retrained_are_row_and_diagonal(decodable):
    ct = cross_temporal_decoding(decodable)
    fx = fixed_decoder(decodable, t0=1.0)
    rt = retrained_decoder(decodable)
    assert ct["accuracy"].dims == ("time", "time_ref")
    np.testing.assert_array_equal(fx["accuracy"].values, ct["accuracy"].isel(time_ref=1).values)
    np.testing.assert_array_equal(rt["accuracy"].values, np.diag(ct["accuracy"].values))
    assert float(fx["time_ref"]) == 1.0
    assert ct.attrs["chance"] == 0.5
    # decodable at the training time; the fixed reader decays as the tuning drifts away
    assert (rt["accuracy"].values > 0.85).all()
    assert fx["accuracy"].values[4] < fx["accuracy"].values[1] - 0.15


@pytest.mark.parametrize("decoder", ["ridge", "logistic"])
def test_chance_on_shuffled_labels(decoder):
    ds = ou_population(n_times=3, n_units=40, n_stimuli=200, kappa=0.5, noise=0.3, seed=2)
    labels = np.random.default_rng(0).permutation(ds["target"].values)
    acc = cross_temporal_decoding(ds, labels=labels, decoder=decoder)["accuracy"].values
    real = retrained_decoder(ds, decoder=decoder)["accuracy"].values
    # 9 pairs x 200 held-out stimuli; binomial s.e. of the mean ~ 0.012 (pairs correlated)
    assert abs(acc.mean() - 0.5) < 0.06
    assert real.mean() > 0.9


def test_ridge_equals_kernel_regression_of_theory(decodable):
    """Without intercept or cross-validation the ridge reader at t0 predicts
    sign(Sig(t, t0) (Sig(t0, t0) + alpha I)^-1 Y), Sig = (1/N) population kernel."""
    alpha = 0.3
    acc = fixed_decoder(decodable, alpha=alpha, cv=None, fit_intercept=False)["accuracy"].values
    x = decodable["activity"].values  # (time, unit, stimulus)
    y = decodable["target"].values
    n = x.shape[1]
    k00 = x[0].T @ x[0] / n
    coef = np.linalg.solve(k00 + alpha * np.eye(len(y)), y)
    for t in range(x.shape[0]):
        pred = np.sign(x[t].T @ x[0] / n @ coef)
        assert acc[t] == pytest.approx(np.mean(pred == y))


def test_nan_units_equal_dropping_by_hand(decodable):
    ds = decodable.copy(deep=True)
    ds["activity"][3, [4, 10, 11]] = np.nan  # untracked at time 3
    kw = dict(alpha=0.5, cv=None, fit_intercept=False)
    got = fixed_decoder(ds, **kw)
    keep = np.setdiff1d(np.arange(60), [4, 10, 11])
    ref = fixed_decoder(decodable.isel(unit=keep), **kw)
    assert got["accuracy"].values[3] == ref["accuracy"].values[3]
    assert got["n_units"].values[3] == 57 and got["n_units"].values[2] == 60


def test_trials_cv_and_member_batch():
    ds = ou_population(
        n_times=3, n_units=30, n_stimuli=6, n_members=2, n_trials=4, noise=1.0, seed=3
    )
    ct = cross_temporal_decoding(ds, labels="stimulus", cv=2)
    assert ct["accuracy"].dims == ("member", "time", "time_ref")
    assert ct.attrs["chance"] == pytest.approx(1 / 6)
    assert (np.diag(ct["accuracy"].values[0]) > 0.6).all()
    with pytest.raises(ValueError, match="trial"):
        retrained_decoder(ds.isel(trial=0), labels="stimulus")


def test_split_cv(decodable):
    ds = decodable.assign_coords(split=("stimulus", np.where(np.arange(60) < 40, "train", "test")))
    acc = retrained_decoder(ds, cv="split")["accuracy"].values
    assert (acc > 0.8).all()


def _template_direct(probe, template):
    """Fraction of stimuli whose best-correlated template is themselves."""
    s = probe.shape[1]
    c = np.corrcoef(probe.T, template.T)[:s, s:]
    return np.mean(np.argmax(c, axis=1) == np.arange(s))


def test_template_matching_matches_direct():
    ds = ou_population(n_times=4, n_units=25, n_stimuli=15, tau=1.0, floor=0.1, seed=4)
    res = template_matching(ds)
    x = ds["activity"].values
    for i in range(4):
        for j in range(4):
            assert res["accuracy"].values[i, j] == pytest.approx(_template_direct(x[i], x[j]))
    assert res.attrs["chance"] == pytest.approx(1 / 15)
    lab = template_matching(ds, labels="target")
    assert (lab["accuracy"].values >= res["accuracy"].values).all()


def test_template_matching_with_trials_and_dask():
    ds = ou_population(n_times=3, n_units=40, n_stimuli=8, n_trials=4, noise=1.0, seed=5)
    res = template_matching(ds)
    x = ds["activity"].values
    probes, templates = x[..., 1::2].mean(-1), x[..., 0::2].mean(-1)
    assert res["accuracy"].values[2, 0] == pytest.approx(_template_direct(probes[2], templates[0]))
    lazy = template_matching(ds.chunk(unit=15))
    np.testing.assert_allclose(lazy["accuracy"].values, res["accuracy"].values)


def test_output_accuracy():
    out = np.array([[[0.5, -1.0, 2.0, 0.1]], [[-0.5, -1.0, 2.0, -0.1]]])  # time, member, stim
    ds = xr.Dataset(
        {"output": (("time", "member", "stimulus"), out)},
        coords={
            "time": [0.0, 1.0],
            "target": ("stimulus", [1.0, -1.0, np.nan, 1.0]),
            "split": ("stimulus", ["train", "train", "test", "test"]),
        },
    )
    acc = output_accuracy(ds)["accuracy"]
    assert acc.sel(split="train").values.ravel().tolist() == [1.0, 0.5]
    assert acc.sel(split="test").values.ravel().tolist() == [1.0, 0.0]
    assert output_accuracy(ds, by_split=False)["accuracy"].values.ravel().tolist() == [1.0, 1 / 3]


def test_decoders_use_sessions_with_ragged_trials_and_missing_cells():
    """Padded trials (NaN for every unit) and untracked cells must not remove every unit."""
    import warnings

    from drift.io import from_sessions, synthetic_recording

    rec = synthetic_recording(n_sessions=3, n_units=60, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = from_sessions(rec.sessions, rec.registration)
    assert np.isnan(data["activity"].values).any()
    result = cross_temporal_decoding(data, labels="stimulus")
    acc = result["accuracy"].values
    assert np.all(np.isfinite(acc))
    assert np.all(result["n_units"].values > 0)
    chance = result.attrs["chance"]
    assert np.diag(acc).min() > chance + 0.3
