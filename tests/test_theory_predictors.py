"""Predictors of THEORY.md sections 5-6 against the limits the theory must reproduce."""

import numpy as np
import pytest
import scipy.linalg

from drift.theory import (
    equilibrium_posterior,
    fixed_decoder,
    frozen_readout,
    hidden_autocorrelation,
    hidden_kernel,
    mean_predictor,
    nngp,
    ntk,
)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((14, 6))
    xt = rng.standard_normal((5, 6))
    return x, np.sign(x[:, 0] + 0.3), xt


def test_zero_temperature_is_ntk_gradient_flow(problem):
    x, y, xt = problem
    times = np.geomspace(1e-3, 40.0, 25)
    ds = mean_predictor(x, y, xt, times, depth=2, temperature=0.0, prior_variance=1.0,
                        init_variance=0.6)
    k = ntk(x, depth=2, variance=0.6)
    kt = ntk(xt, x, depth=2, variance=0.6)
    expected = []
    for t in times:
        g = scipy.linalg.expm(-k * t) @ y
        expected.append(np.concatenate([y - g, kt @ np.linalg.solve(k, y - g)]))
    err = np.abs(ds["output_mean"].values - np.array(expected))
    assert err.max() < 1e-3
    # the reported error bounds the true error (grid refinement estimate)
    assert np.all(err <= ds["output_mean_error"].values + 1e-9)
    assert list(ds["split"].values[:14]) == ["train"] * 14
    assert list(ds["split"].values[14:]) == ["test"] * 5


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_late_time_is_gp_posterior_with_noise_t(problem, activation):
    x, y, xt = problem
    temperature, s2 = 0.1, 1.0
    lam = temperature / s2
    times = np.geomspace(0.01, 25.0 / lam, 30)
    ds = mean_predictor(x, y, xt, times, depth=2, activation=activation,
                        temperature=temperature, prior_variance=s2, init_variance=0.4)
    c = nngp(x, depth=2, activation=activation, variance=s2)
    ct = nngp(xt, x, depth=2, activation=activation, variance=s2)
    post = np.concatenate([c, ct]) @ np.linalg.solve(c + temperature * np.eye(len(y)), y)
    # relaxation left at 25/lambda is ~exp(-25); the tolerance is the solver's accuracy
    np.testing.assert_allclose(ds["output_mean"].values[-1], post, atol=1e-4)
    eq = equilibrium_posterior(x, y, xt, depth=2, activation=activation,
                               temperature=temperature, prior_variance=s2)
    np.testing.assert_allclose(eq["posterior_mean"].values, post, rtol=1e-8)
    assert np.all(eq["posterior_variance"].values[: len(y)] < temperature + 1e-12)


def test_grid_refinement_converges_and_error_is_honest(problem):
    x, y, xt = problem
    kw = dict(depth=2, temperature=0.05, prior_variance=1.0, init_variance=0.3)
    times = np.geomspace(0.01, 100.0, 15)
    base = mean_predictor(x, y, xt, times, **kw)
    ref = mean_predictor(x, y, xt, times, refine=4.0, **kw)
    true_err = np.abs(base["output_mean"] - ref["output_mean"]).values
    assert base.attrs["error_estimate"] < 1e-3
    assert true_err.max() <= base.attrs["error_estimate"] + 1e-7
    assert ref.attrs["error_estimate"] < base.attrs["error_estimate"] / 4  # ~second order


def test_two_phases(problem):
    """Small T: first NTK gradient flow at sigma02, then relaxation on 1/lambda to the NNGP
    posterior at sigma2 (THEORY.md section 5, phases).

    erf keeps the two-time kernels analytic in the lag, so at lambda t1 = 1e-3 they differ
    from the T = 0 kernels by O(1e-3); ReLU's derivative kernel moves as sqrt(lambda tau)
    (units cross zero), which would make the comparison with T = 0 much looser."""
    x, y, xt = problem
    temperature, s2, s02 = 1e-6, 1.0, 0.5
    lam = temperature / s2
    t1 = 1e-3 / lam  # the weight variance has moved by ~2 lambda t1 = 0.2 %
    times = np.array([t1, 3.0 / lam, 30.0 / lam])
    kw = dict(depth=2, activation="erf", prior_variance=s2, init_variance=s02)
    ds = mean_predictor(x, y, xt, times, temperature=temperature, **kw)
    flow = mean_predictor(x, y, xt, [t1], temperature=0.0, **kw)
    out = ds["output_mean"].values
    np.testing.assert_allclose(out[0], flow["output_mean"].values[0], atol=2e-2)
    post = equilibrium_posterior(x, y, xt, depth=2, activation="erf", temperature=temperature,
                                 prior_variance=s2)["posterior_mean"].values
    np.testing.assert_allclose(out[-1], post, atol=1e-3)
    # the NTK and NNGP solutions differ, so the test outputs keep moving after the fit
    assert np.abs(out[-1, 14:] - out[0, 14:]).max() > 0.01
    assert np.abs(out[1, 14:] - out[0, 14:]).max() > 0.005


def test_frozen_readout_starts_at_mean_and_decays_to_norm_floor(problem):
    x, y, xt = problem
    kw = dict(depth=2, temperature=0.1, prior_variance=1.0, init_variance=0.5)
    t0 = 15.0
    mean = mean_predictor(x, y, xt, [t0], **kw)["output_mean"].values[0]
    fr = frozen_readout(x, y, xt, t0, [t0, t0 + 5, t0 + 400], **kw)
    out = fr["output_frozen"].values
    np.testing.assert_allclose(out[0], mean, atol=2e-4)
    assert np.abs(out[1]).mean() < np.abs(out[0]).mean()
    # ReLU: the floor is E[phi(u_x)] * const, proportional to |x| for depth 1 in layer L
    norms = np.linalg.norm(np.concatenate([x, xt]), axis=1)
    assert np.std(out[-1]) < 0.2 * np.abs(out[0]).mean()
    assert np.corrcoef(out[-1], norms)[0, 1] > 0.9 or np.ptp(out[-1]) < 1e-3


def test_fixed_decoder_equals_kernel_regression_at_t0_and_decays(problem):
    x, y, xt = problem
    kw = dict(depth=2, temperature=0.1, prior_variance=1.0, init_variance=1.0)
    t0 = 50.0
    dec = fixed_decoder(x, y, x, t0, [t0, t0 + 1000.0], layer=1, alpha=1e-6, y_eval=y, **kw)
    np.testing.assert_allclose(dec["decoder_output"].values[0], y, atol=1e-3)
    assert dec["decoder_accuracy"].values[0] == 1.0
    assert np.abs(dec["decoder_output"].values[1]).max() < np.abs(y).max()


def test_hidden_autocorrelation_decays_faster_in_deeper_layers(problem):
    x, _, _ = problem
    kw = dict(depth=3, temperature=0.1, prior_variance=1.0, init_variance=1.0)
    lags = np.array([0.0, 2.0, 10.0, 1000.0])
    c1 = hidden_autocorrelation(x, 0.0, lags, layer=1, **kw)["normalised"].values
    c3 = hidden_autocorrelation(x, 0.0, lags, layer=3, **kw)["normalised"].values
    np.testing.assert_allclose(c1[0], 1.0)
    assert np.all(c3[1:3] < c1[1:3])
    np.testing.assert_allclose(c1[-1], 0.0, atol=1e-6)
    k = hidden_kernel(x, 5.0, x, 5.0, layer=2, **kw)
    np.testing.assert_allclose(np.diag(k), np.diag(nngp(x, depth=2, variance=1.0)) / 1.0)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(temperature=-0.1), "temperature"),
        (dict(prior_variance=0.0), "prior_variance"),
        (dict(init_variance=-1.0), "init_variance"),
        (dict(depth=0), "depth"),
        (dict(activation="swish"), "activation"),
        (dict(times=[1.0, 0.5]), "times"),
        (dict(times=[-1.0, 0.5]), "times"),
        (dict(y_train=np.ones(3)), "y_train"),
    ],
)
def test_mean_predictor_rejects_bad_input(problem, change, match):
    x, y, xt = problem
    args = dict(x_train=x, y_train=y, x_test=xt, times=[0.1, 1.0], depth=1, activation="relu",
                temperature=0.1, prior_variance=1.0, init_variance=1.0)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        mean_predictor(**args)


def test_nan_input_and_shape_mismatch(problem):
    x, y, xt = problem
    bad = xt.copy()
    bad[1, 2] = np.inf
    kw = dict(depth=1, temperature=0.1, prior_variance=1.0, init_variance=1.0)
    with pytest.raises(ValueError, match="x_test"):
        mean_predictor(x, y, bad, [1.0], **kw)
    with pytest.raises(ValueError, match="x_test"):
        mean_predictor(x, y, xt[:, :4], [1.0], **kw)


def test_output_variance_from_prior_to_posterior():
    """Var f(x, 0) is the NNGP at sigma02; at late times the ensemble samples the
    posterior, so the variance tends to the GP posterior variance (independent formula)."""
    from drift.theory import output_variance

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5))
    xt = rng.standard_normal((3, 5))
    y = np.sign(x[:, 0])
    kw = dict(depth=2, temperature=0.1, prior_variance=1.0)
    v = output_variance(x, y, xt, [0.0, 5.0, 300.0], init_variance=0.5, **kw)
    var = v["output_variance"].values
    x_all = np.concatenate([x, xt])
    np.testing.assert_allclose(var[0], np.diag(nngp(x_all, depth=2, variance=0.5)), rtol=1e-10)
    post = equilibrium_posterior(x, y, xt, **kw)["posterior_variance"].values
    # discretisation of the dense resolvent: ~1% (checked against the refined grid)
    np.testing.assert_allclose(var[-1], post, rtol=0.03)
    assert np.all(np.isfinite(v["output_variance_error"].values))
    assert np.all(np.abs(var[-1] - post) <= 3 * v["output_variance_error"].values[-1] + 0.01 * post)
