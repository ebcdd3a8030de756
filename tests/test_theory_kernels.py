"""Kernels of THEORY.md section 4 against closed forms, quadrature and Monte Carlo."""

import numpy as np
import pytest

from drift.theory import (
    get_activation,
    kernel_stack,
    nngp,
    ntk,
    prior_correlation,
    two_time_kernels,
)
from drift.theory.activations import Activation
from drift.theory.table import KernelTable


@pytest.fixture
def inputs():
    rng = np.random.default_rng(1)
    return rng.standard_normal((5, 6))


@pytest.mark.parametrize("name", ["relu", "erf", "linear"])
@pytest.mark.parametrize("rule", ["polar", "hermite"])
def test_quadrature_reproduces_closed_forms(name, rule):
    act = get_activation(name)
    rng = np.random.default_rng(0)
    q1 = rng.uniform(0.2, 3.0, 50)
    q2 = rng.uniform(0.2, 3.0, 50)
    rho = np.concatenate([rng.uniform(-1, 1, 47), [1.0, -1.0, 0.999999]])
    c = rho * np.sqrt(q1 * q2)
    closed = act.expectations(q1, q2, c)
    quad = act.quadrature(q1, q2, c, rule=rule)
    # polar quadrature splits at the kink: ReLU and linear to machine precision, erf
    # (smooth, 32 points per dimension) to ~1e-6; Gauss-Hermite is spectrally accurate for
    # smooth erf/linear but first order at ReLU's jump.
    if rule == "polar":
        tol = {"relu": 1e-8, "erf": 2e-6, "linear": 1e-8}[name]
    else:  # 32 x 32 Gauss-Hermite nodes
        tol = {"relu": 5e-2, "erf": 5e-3, "linear": 1e-8}[name]
    np.testing.assert_allclose(quad[0], closed[0], atol=tol)
    np.testing.assert_allclose(quad[1], closed[1], atol=tol)


def test_relu_closed_form_against_monte_carlo():
    rng = np.random.default_rng(3)
    q1, q2, c = 1.3, 0.7, 0.5
    cov = np.array([[q1, c], [c, q2]])
    z = rng.multivariate_normal([0, 0], cov, size=400_000)
    relu = np.maximum(z, 0)
    mc_pp = np.mean(relu[:, 0] * relu[:, 1])
    mc_dd = np.mean((z[:, 0] > 0) & (z[:, 1] > 0))
    e_pp, e_dd = get_activation("relu").expectations(q1, q2, c)
    se = 5 * np.std(relu[:, 0] * relu[:, 1]) / np.sqrt(len(z))
    assert abs(mc_pp - e_pp) < se
    assert abs(mc_dd - e_dd) < 5 * 0.5 / np.sqrt(len(z))


def test_callable_activation_matches_builtin(inputs):
    custom = nngp(inputs, depth=2, activation=lambda z: np.maximum(z, 0.0), variance=1.3)
    builtin = nngp(inputs, depth=2, activation="relu", variance=1.3)
    np.testing.assert_allclose(custom, builtin, rtol=1e-8, atol=1e-10)
    k_custom = ntk(inputs, depth=2, activation=np.tanh, variance=0.8)
    k_tanh = ntk(inputs, depth=2, activation="tanh", variance=0.8)
    np.testing.assert_allclose(k_custom, k_tanh, rtol=1e-5)


def test_linear_network_closed_form(inputs):
    """Linear activation: NNGP = v^(L+1) X X^T / N0 and NTK = (L+1) v^L X X^T / N0."""
    v, depth = 0.7, 3
    gram = inputs @ inputs.T / inputs.shape[1]
    np.testing.assert_allclose(nngp(inputs, depth=depth, activation="linear", variance=v),
                               v ** (depth + 1) * gram, rtol=1e-12)
    np.testing.assert_allclose(ntk(inputs, depth=depth, activation="linear", variance=v),
                               (depth + 1) * v**depth * gram, rtol=1e-12)


def _finite_network_kernels(x, width, depth, v, rng, phi, dphi):
    """Empirical (1/N) sum phi phi of the last layer and the empirical NTK of one network."""
    n0 = x.shape[1]
    ws = [rng.normal(0, np.sqrt(v), (width, n0))]
    ws += [rng.normal(0, np.sqrt(v), (width, width)) for _ in range(depth - 1)]
    a = rng.normal(0, np.sqrt(v), width)
    hs, acts = [], [x.T]
    h = ws[0] @ x.T / np.sqrt(n0)
    for layer in range(depth):
        hs.append(h)
        acts.append(phi(h))
        if layer + 1 < depth:
            h = ws[layer + 1] @ acts[-1] / np.sqrt(width)
    # backward: delta_l = d f / d h_l
    delta = a[:, None] * dphi(hs[-1]) / np.sqrt(width)
    ntk_emp = acts[-1].T @ acts[-1] / width
    for layer in range(depth - 1, -1, -1):
        fan_in = n0 if layer == 0 else width
        ntk_emp += (delta.T @ delta) * (acts[layer].T @ acts[layer]) / fan_in
        if layer > 0:
            delta = (ws[layer].T @ delta) / np.sqrt(width) * dphi(hs[layer - 1])
    return acts[-1].T @ acts[-1] / width, ntk_emp


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_nngp_and_ntk_match_monte_carlo_finite_networks(inputs, name):
    act = get_activation(name)
    rng = np.random.default_rng(7)
    v, depth, width, draws = 1.4, 2, 1024, 40
    sig, tangent = [], []
    for _ in range(draws):
        s, k = _finite_network_kernels(inputs, width, depth, v, rng, act.phi, act.dphi)
        sig.append(s)
        tangent.append(k)
    sig, tangent = np.array(sig), np.array(tangent)
    st = kernel_stack(inputs, inputs, v, v, v, depth=depth, activation=name)
    # mean over draws within 5 standard errors plus the O(1/width) finite-width bias
    for emp, theory in ((sig, st.sig[-1].cross), (tangent, st.g_f)):
        se = emp.std(0) / np.sqrt(draws)
        bias = 3.0 * np.abs(theory) / width
        assert np.all(np.abs(emp.mean(0) - theory) <= 5 * se + bias + 1e-12)
    np.testing.assert_allclose(nngp(inputs, depth=depth, activation=name, variance=v),
                               v * st.sig[-1].cross)


def test_two_time_kernels_reduce_to_equal_time(inputs):
    kw = dict(temperature=0.1, prior_variance=1.2, init_variance=0.4)
    k = two_time_kernels(inputs, 0.0, inputs, 0.0, depth=2, **kw)
    np.testing.assert_allclose(k["G_f"], ntk(inputs, depth=2, variance=0.4), rtol=1e-12)
    np.testing.assert_allclose(k["C"], nngp(inputs, depth=2, variance=0.4), rtol=1e-12)
    np.testing.assert_allclose(k["K_d"], k["G_f"])
    late = two_time_kernels(inputs, 1e4, inputs, 1e4, depth=2, **kw)
    np.testing.assert_allclose(late["C"], nngp(inputs, depth=2, variance=1.2), rtol=1e-10)
    # K_d decays like exp(-lambda tau) times G_f, NaN below the diagonal in time
    k2 = two_time_kernels(inputs, 5.0, inputs, 2.0, depth=2, **kw)
    np.testing.assert_allclose(k2["K_d"], np.exp(-0.1 / 1.2 * 3.0) * k2["G_f"])
    assert np.all(np.isnan(two_time_kernels(inputs, 1.0, inputs, 2.0, depth=1, **kw)["K_d"]))


def test_prior_correlation_limits():
    kw = dict(temperature=0.5, prior_variance=2.0, init_variance=0.3)
    assert prior_correlation(0.0, 0.0, **kw) == pytest.approx(0.3)
    assert prior_correlation(1e5, 1e5, **kw) == pytest.approx(2.0)
    assert prior_correlation(1e5, 1e5 + 4.0, **kw) == pytest.approx(2.0 * np.exp(-0.25 * 4.0))
    assert np.all(prior_correlation(np.linspace(0, 9, 5), 3.0, temperature=0.0,
                                    prior_variance=2.0, init_variance=0.3) == 0.3)


def test_stationary_identity_dc_dtau(inputs):
    """sigma02 = sigma2: dC/dtau = -T K_d(tau) and T int_0^inf K_d = NNGP (section 5)."""
    temperature, s2 = 0.2, 1.5
    kw = dict(temperature=temperature, prior_variance=s2, init_variance=s2)
    lam = temperature / s2
    taus = np.linspace(0.0, 60.0 / lam, 20001)
    kd = np.stack([two_time_kernels(inputs, t, inputs, 0.0, depth=2, **kw)["K_d"]
                   for t in taus[::100]])
    c = np.stack([two_time_kernels(inputs, t, inputs, 0.0, depth=2, **kw)["C"]
                  for t in taus[::100]])
    dc = np.gradient(c, taus[::100], axis=0)
    np.testing.assert_allclose(dc[5:-5], -temperature * kd[5:-5], atol=2e-3 * np.abs(kd).max())
    # the integral: K_d has a sqrt cusp at tau = 0 (ReLU), integrate in u = sqrt(tau)
    u = np.linspace(0.0, np.sqrt(60.0 / lam), 4001)
    vals = np.stack([two_time_kernels(inputs, uu**2, inputs, 0.0, depth=2, **kw)["K_d"]
                     for uu in u])
    integral = np.trapezoid(vals * 2 * u[:, None, None], u, axis=0)
    np.testing.assert_allclose(temperature * integral, nngp(inputs, depth=2, variance=s2)
                               - c[-1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(kd[0], ntk(inputs, depth=2, variance=s2), rtol=1e-12)


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_kernel_table_interpolates_to_tolerance(inputs, name):
    table = KernelTable(inputs, inputs[:3], ["G_f", "Sig_2", "SigdG_L"], depth=2,
                        activation=name, a_range=(0.4, 1.3), w_max=1.0)
    assert table.interpolation_error < 1e-8
    a, b, w = 0.77, 1.01, 0.41
    c = np.sqrt(a * b) * (1 - w**2)
    exact = kernel_stack(inputs, inputs[:3], a, b, c, depth=2, activation=name)
    np.testing.assert_allclose(table.evaluate("G_f", a, b, w), exact.g_f, rtol=1e-7)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(depth=0), "depth"),
        (dict(depth=1.5), "depth"),
        (dict(activation="softsign"), "activation"),
        (dict(variance=0.0), "variance"),
        (dict(variance=-1.0), "variance"),
    ],
)
def test_bad_kernel_arguments(inputs, kwargs, match):
    args = dict(depth=2, activation="relu", variance=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        nngp(inputs, **args)


def test_bad_inputs_name_the_argument(inputs):
    bad = inputs.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x1"):
        nngp(bad, depth=1)
    with pytest.raises(ValueError, match="x2"):
        nngp(inputs, inputs[:, :3], depth=1)
    with pytest.raises(ValueError, match="temperature"):
        two_time_kernels(inputs, 0, inputs, 0, depth=1, temperature=-1, prior_variance=1,
                         init_variance=1)
    with pytest.raises(ValueError, match="t2"):
        two_time_kernels(inputs, 0, inputs, -1.0, depth=1, temperature=1, prior_variance=1,
                         init_variance=1)
    assert isinstance(get_activation("relu"), Activation)
