"""The batched ensemble network, its hand-written backward pass, the NTK and the OU step."""

from __future__ import annotations

import math

import pytest
import torch

from drift.langevin import LangevinIntegrator, max_eigenvalue, ou_coefficients, stable_dt_bound
from drift.network import ACTIVATIONS, EnsembleNetwork, backward_, forward, ntk_gram

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: one thread avoids waiting on a busy second core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _net(activation="relu", depth=2, members=3, n0=5, width=7, variance=0.7, seed=0):
    net = EnsembleNetwork(members=members, input_dim=n0, width=width, depth=depth,
                          activation=activation, dtype=F64)
    net.init_(variance, torch.Generator().manual_seed(seed))
    return net


def _data(p=4, n0=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(p, n0, generator=g, dtype=F64), torch.randn(p, generator=g, dtype=F64)


def _autograd_loss(net, x, y):
    params = [p.clone().requires_grad_(True) for p in net.parameters]
    f = forward(params[:-1], params[-1], x, net.activation).output
    loss = 0.5 * ((f - y) ** 2).sum()  # members are independent: the sum separates
    return params, loss


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_hand_backward_equals_autograd(activation, depth):
    net = _net(activation, depth)
    x, y = _data()
    loss, grads = net.loss_and_gradient(x, y)
    params, total = _autograd_loss(net, x, y)
    expected = torch.autograd.grad(total, params)
    for g, e, name in zip(grads, expected, [f"W{i + 1}" for i in range(depth)] + ["a"],
                          strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12, msg=f"gradient of {name}")
    f = net.forward(x).output
    torch.testing.assert_close(loss, 0.5 * ((f - y) ** 2).sum(1), rtol=1e-14, atol=0)


def test_forward_matches_the_definition_member_by_member():
    """h1 = W1 x / sqrt(N0), h2 = W2 phi(h1) / sqrt(N), f = a . phi(h2) / sqrt(N)."""
    net = _net("erf", depth=2, members=4)
    x, _ = _data()
    fwd = net.forward(x)
    for m in range(net.members):
        w1, w2, a = net.weights[0][m], net.weights[1][m], net.readout[m]
        h1 = w1 @ x.T / math.sqrt(net.input_dim)
        h2 = w2 @ torch.erf(h1) / math.sqrt(net.width)
        f = a @ torch.erf(h2) / math.sqrt(net.width)
        torch.testing.assert_close(fwd.activations[0][m], torch.erf(h1))
        torch.testing.assert_close(fwd.activations[1][m], torch.erf(h2))
        torch.testing.assert_close(fwd.output[m], f)


def test_parameters_are_views_of_one_flat_buffer():
    net = _net(depth=3)
    assert sum(p.numel() for p in net.parameters) == net.n_params
    net.theta.zero_()
    assert all(float(p.abs().sum()) == 0 for p in net.parameters)
    assert net.hidden.numel() == net.n_params - net.readout.numel()


def test_fused_update_is_beta_theta_plus_alpha_grad():
    net = _net("tanh", depth=3)
    x, y = _data()
    _, grads = net.loss_and_gradient(x, y)
    before = [p.clone() for p in net.parameters]
    fwd = net.forward(x, derivatives=True)
    backward_(net.weights, net.readout, x, fwd, fwd.output - y, net.parameters,
              beta=0.9, alpha=-0.05)
    for p, p0, g in zip(net.parameters, before, grads, strict=True):
        torch.testing.assert_close(p, 0.9 * p0 - 0.05 * g, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_ntk_gram_equals_jacobian_product(activation):
    net = _net(activation, depth=2)
    x, _ = _data()
    gram = ntk_gram(net, x)
    for m in range(net.members):
        rows = []
        for mu in range(x.shape[0]):
            params = [p.clone().requires_grad_(True) for p in net.parameters]
            f = forward(params[:-1], params[-1], x, activation).output
            grads = torch.autograd.grad(f[m, mu], params)
            rows.append(torch.cat([g[m].reshape(-1) for g in grads]))
        jac = torch.stack(rows)
        torch.testing.assert_close(gram[m], jac @ jac.T, rtol=1e-12, atol=1e-12)


def test_max_eigenvalue_dense_and_iterative():
    g = torch.Generator().manual_seed(3)
    for p in (20, 2100):
        a = torch.randn(1, p, p + 5, generator=g, dtype=F64)
        sym = a @ a.transpose(1, 2)
        expected = torch.linalg.eigvalsh(sym)[:, -1]
        torch.testing.assert_close(max_eigenvalue(sym), expected, rtol=1e-6, atol=0)


def test_stable_dt_bound_is_inverse_top_ntk_eigenvalue():
    net = _net(depth=2, members=5)
    x, _ = _data(p=6)
    top = torch.linalg.eigvalsh(ntk_gram(net, x))[:, -1].max()
    assert stable_dt_bound(net, x, members=5) == pytest.approx(1 / float(top), rel=1e-10)
    assert stable_dt_bound(net, x[:0]) == math.inf


def test_ou_coefficients():
    decay, std = ou_coefficients(0.1, temperature=0.5, prior_variance=2.0)
    assert decay == pytest.approx(math.exp(-0.25 * 0.1))
    assert std == pytest.approx(math.sqrt(2.0 * (1 - math.exp(-2 * 0.25 * 0.1))))
    assert ou_coefficients(0.1, 0.0, 2.0) == (1.0, 0.0)


def test_zero_temperature_is_exactly_gradient_descent():
    """T = 0: no decay, no noise, no random numbers drawn; equals autograd GD steps."""
    net = _net("relu", depth=2, members=3)
    x, y = _data()
    gen = torch.Generator().manual_seed(5)
    rng_before = gen.get_state()
    integ = LangevinIntegrator(net, x, y, dt=0.05, temperature=0.0, prior_variance=1.0,
                               generator=gen)
    assert integ.noise is None
    # one step equals theta - dt * grad (hand gradient) to rounding
    _, grads = net.loss_and_gradient(x, y)
    expected = [p - 0.05 * g for p, g in zip(net.parameters, grads, strict=True)]
    integ.step()
    for p, e in zip(net.parameters, expected, strict=True):
        torch.testing.assert_close(p, e, rtol=1e-14, atol=1e-15)
    # 30 more steps follow plain autograd gradient descent
    params = [p.clone().requires_grad_(True) for p in net.parameters]
    for _ in range(30):
        integ.step()
        f = forward(params[:-1], params[-1], x, "relu").output
        grads = torch.autograd.grad(0.5 * ((f - y) ** 2).sum(), params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= 0.05 * g
    for p, e in zip(net.parameters, params, strict=True):
        torch.testing.assert_close(p, e.detach(), rtol=1e-11, atol=1e-12)
    assert torch.equal(gen.get_state(), rng_before)


def test_prior_step_without_data_decays_and_adds_noise():
    """No data: theta <- exp(-lambda dt) theta + sqrt(sigma2 (1 - exp(-2 lambda dt))) xi."""
    net = _net(depth=1, members=2)
    x, y = _data(p=0)
    before = net.theta.clone()
    gen = torch.Generator().manual_seed(11)
    integ = LangevinIntegrator(net, x, y, dt=0.2, temperature=0.3, prior_variance=1.5,
                               generator=gen)
    assert integ.step() is None
    decay, std = ou_coefficients(0.2, 0.3, 1.5)
    xi = torch.empty_like(before)
    # the noise is drawn block by block from the same generator state
    gen2 = torch.Generator().manual_seed(11)
    block = integ.noise.numel()
    for start in range(0, xi.numel(), block):
        xi[start : start + block].normal_(0.0, std, generator=gen2)
    torch.testing.assert_close(net.theta, decay * before + xi, rtol=1e-14, atol=1e-15)


def test_frozen_readout_step_leaves_readout_untouched():
    net = _net(depth=2)
    x, y = _data()
    a0 = net.readout.clone()
    w0 = net.hidden.clone()
    integ = LangevinIntegrator(net, x, y, dt=0.05, temperature=0.2, prior_variance=1.0,
                               generator=torch.Generator().manual_seed(0))
    integ.step(learn=False, freeze_readout=True)
    assert torch.equal(net.readout, a0)
    assert not torch.equal(net.hidden, w0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("depth", [1, 3])
def test_workspace_buffers_give_the_same_step(activation, depth):
    """The training step reuses its buffers; results equal the allocating path."""
    x, y = _data()
    plain, reused = _net(activation, depth), _net(activation, depth)
    workspace: dict = {}
    for _ in range(3):
        f1 = plain.forward(x, derivatives=True)
        f2 = reused.forward(x, derivatives=True, workspace=workspace)
        torch.testing.assert_close(f2.output, f1.output, rtol=1e-14, atol=1e-15)
        backward_(plain.weights, plain.readout, x, f1, f1.output - y, plain.parameters,
                  beta=0.99, alpha=-0.1)
        backward_(reused.weights, reused.readout, x, f2, f2.output - y, reused.parameters,
                  beta=0.99, alpha=-0.1, workspace=workspace)
        torch.testing.assert_close(reused.theta, plain.theta, rtol=1e-13, atol=1e-14)
    assert workspace and all(b.data_ptr() for b in workspace.values())
