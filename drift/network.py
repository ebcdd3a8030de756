"""A whole ensemble of fully connected networks evaluated with batched matrix products.

The network of THEORY.md section 1 (depth ``L``, width ``N``, NTK parameterisation, no
biases)::

    h1     = W1 x / sqrt(N0)
    h(l+1) = W(l+1) phi(h_l) / sqrt(N)
    f      = a . phi(h_L) / sqrt(N)

Every weight tensor carries the ensemble member as its leading (batch) dimension, so one
forward or backward pass over ``M`` members is a handful of GEMMs, never a Python loop
over members. All parameters live in one contiguous flat buffer :attr:`EnsembleNetwork.theta`
(layer after layer: ``W1 (M, N, N0)``, ``W2 .. WL (M, N, N)``, ``a (M, N)``), so that the
elementwise parts of a Langevin step (decay, noise) are single passes over memory.

Activations are handed out as ``(member, unit, stimulus)`` tensors, the order of the data
format; they are views of stimulus-major ``(member, stimulus, unit)`` storage, the faster
GEMM layout when there are fewer stimuli than units.

The backward pass is written by hand: gradients of ``E = 1/2 sum_mu (f(x_mu) - y_mu)^2``
(a sum over the training set, not a mean) are accumulated with ``baddbmm``/``addmm`` as
``target <- beta * target + alpha * grad``; with the parameters themselves as targets,
``beta = exp(-lambda dt)`` and ``alpha = -dt`` this *is* the deterministic part of the
Langevin step, fused into the GEMMs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "ACTIVATIONS",
    "EnsembleNetwork",
    "Forward",
    "activation_derivative",
    "apply_activation",
    "ntk_gram",
]

ACTIVATIONS = ("relu", "erf", "linear", "tanh")
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def apply_activation(h: torch.Tensor, name: str) -> torch.Tensor:
    """``phi(h)`` elementwise (out of place)."""
    if name == "relu":
        return torch.relu(h)
    if name == "erf":
        return torch.erf(h)
    if name == "tanh":
        return torch.tanh(h)
    if name == "linear":
        return h.clone()
    raise ValueError(f"network.activation must be one of {ACTIVATIONS} (got {name!r})")


def activation_derivative(h: torch.Tensor, name: str) -> torch.Tensor:
    """``phi'(h)`` elementwise (out of place)."""
    if name == "relu":
        return (h > 0).to(h.dtype)
    if name == "erf":
        return torch.exp(-h * h).mul_(_TWO_OVER_SQRT_PI)
    if name == "tanh":
        return 1.0 - torch.tanh(h) ** 2
    if name == "linear":
        return torch.ones_like(h)
    raise ValueError(f"network.activation must be one of {ACTIVATIONS} (got {name!r})")


def _activate_(
    h: torch.Tensor, name: str, derivative: bool, out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Overwrite ``h`` with ``phi(h)``; return it and ``phi'(h)`` (None when not asked or
    identically 1). ``out`` (shaped like ``h``) receives ``phi'(h)`` when given."""
    d = None
    if name == "relu":
        h.clamp_min_(0.0)
        if derivative:
            d = torch.gt(h, 0.0, out=out) if out is not None else torch.gt(h, 0.0).to(h.dtype)
    elif name == "erf":
        if derivative:
            d = torch.mul(h, h, out=out).neg_().exp_().mul_(_TWO_OVER_SQRT_PI)
        h.erf_()
    elif name == "tanh":
        h.tanh_()
        if derivative:
            d = torch.mul(h, h, out=out).neg_().add_(1.0)
    elif name != "linear":
        raise ValueError(f"network.activation must be one of {ACTIVATIONS} (got {name!r})")
    return h, d


def _buffer(workspace: dict | None, key: str, shape: tuple[int, ...],
            like: torch.Tensor) -> torch.Tensor | None:
    """A buffer of ``shape`` kept in ``workspace`` under ``key`` (None without one)."""
    if workspace is None:
        return None
    buf = workspace.get(key)
    if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
        buf = torch.empty(shape, dtype=like.dtype, device=like.device)
        workspace[key] = buf
    return buf


def _out(buf: torch.Tensor | None) -> dict:
    return {} if buf is None else {"out": buf}


@dataclass
class Forward:
    """Result of a forward pass of the ensemble on ``P`` stimuli.

    Attributes
    ----------
    output : Tensor, shape (M, P)
        ``f(x)`` of every member.
    activations : list of Tensor, each (M, N, P)
        Post-activations ``phi(h_l)``, l = 1..L (views of ``(M, P, N)`` storage).
    derivatives : list of Tensor or None, each (M, N, P)
        ``phi'(h_l)`` when asked for (None entries for the linear activation).
    """

    output: torch.Tensor
    activations: list[torch.Tensor]
    derivatives: list[torch.Tensor | None] | None


def forward(
    weights: Sequence[torch.Tensor],
    readout: torch.Tensor,
    x: torch.Tensor,
    activation: str,
    *,
    derivatives: bool = False,
    workspace: dict | None = None,
) -> Forward:
    """Forward pass of an ensemble given its weights.

    Parameters
    ----------
    weights : sequence of Tensor
        ``W1 (M, N, N0)``, ``Wl (M, N, N)`` for l = 2..L.
    readout : Tensor, shape (M, N)
    x : Tensor, shape (P, N0)
        Stimuli, shared by all members.
    activation : str
    derivatives : bool
        Also return ``phi'(h_l)`` (needed by :func:`backward_`).
    workspace : dict, optional
        Buffers reused from call to call (same shapes each time, e.g. every training
        step), so that nothing is allocated. The result lives in these buffers until the
        next call with the same workspace.
    """
    w1 = weights[0]
    M, N, N0 = w1.shape
    P = x.shape[0]
    inv_sqrt_n = 1.0 / math.sqrt(N)
    xs = (x * (1.0 / math.sqrt(N0))).expand(M, P, N0)
    acts: list[torch.Tensor] = []
    ders: list[torch.Tensor | None] = []
    h_t = None  # (M, P, N) storage of the current pre-activation
    for layer, w in enumerate(weights):
        buf = _buffer(workspace, f"h{layer + 1}", (M, P, N), x)
        if layer == 0:  # h1^T = x^T W1^T / sqrt(N0)
            h_t = torch.matmul(xs, w.transpose(1, 2), **_out(buf))
        else:  # h^T = phi(h_prev)^T W^T / sqrt(N); beta = 0: first argument only shapes
            h_t = torch.baddbmm(h_t, h_t, w.transpose(1, 2), beta=0.0, alpha=inv_sqrt_n,
                                **_out(buf))
        d_buf = _buffer(workspace, f"d{layer + 1}", (M, P, N), x) if derivatives else None
        a_t, d_t = _activate_(h_t, activation, derivatives, d_buf)
        h_t = a_t
        acts.append(a_t.transpose(1, 2))
        ders.append(None if d_t is None else d_t.transpose(1, 2))
    f_buf = _buffer(workspace, "f", (M, 1, P), x)
    f = torch.baddbmm(
        readout.new_empty(M, 1, P) if f_buf is None else f_buf, readout.unsqueeze(1), acts[-1],
        beta=0.0, alpha=inv_sqrt_n, **_out(f_buf),
    )
    return Forward(f.view(M, P), acts, ders if derivatives else None)


def backward_(
    weights: Sequence[torch.Tensor],
    readout: torch.Tensor,
    x: torch.Tensor,
    fwd: Forward,
    residual: torch.Tensor,
    targets: Sequence[torch.Tensor | None],
    *,
    beta: float,
    alpha: float,
    workspace: dict | None = None,
) -> None:
    """Hand-written backward pass of ``E = 1/2 sum_mu r_mu^2`` accumulated into ``targets``.

    For every parameter tensor ``p`` with gradient ``g = dE/dp``, does in place
    ``target <- beta * target + alpha * g`` inside the GEMM that computes ``g``.
    Targets may be the parameters themselves (then this is a fused update step: every
    weight is read before it is overwritten). With ``beta = 0`` the target's old content
    is ignored (NaN-safe), giving the plain gradient.

    Parameters
    ----------
    weights, readout : as in :func:`forward`
    x : Tensor, shape (P, N0)
    fwd : Forward
        Forward pass on ``x`` with ``derivatives=True``.
    residual : Tensor, shape (M, P)
        ``r = f(x) - y``, i.e. ``dE/df``.
    targets : sequence of Tensor or None
        ``L + 1`` tensors shaped like ``weights`` then ``readout``; None skips that one
        (e.g. a frozen readout).
    beta, alpha : float
    workspace : dict, optional
        Reused buffers (as in :func:`forward`).
    """
    M, N = readout.shape
    L = len(weights)
    P = residual.shape[1]
    inv_sqrt_n = 1.0 / math.sqrt(N)
    acts, ders = fwd.activations, fwd.derivatives
    if ders is None:
        raise ValueError("backward_ needs a forward pass with derivatives=True")
    # delta_L^T = dE/dh_L^T = (r outer a) * phi'(h_L)^T / sqrt(N), (M, P, N) storage;
    # computed before the readout is touched
    r_scaled = residual * inv_sqrt_n
    delta_t = torch.mul(r_scaled.unsqueeze(2), readout.unsqueeze(1),
                        **_out(_buffer(workspace, "delta_a", (M, P, N), residual)))
    spare = _buffer(workspace, "delta_b", (M, P, N), residual)
    if ders[-1] is not None:
        delta_t.mul_(ders[-1].transpose(1, 2))
    if targets[L] is not None:
        targets[L].unsqueeze(1).baddbmm_(
            residual.unsqueeze(1), acts[-1].transpose(1, 2), beta=beta, alpha=alpha * inv_sqrt_n
        )
    for layer in range(L - 1, 0, -1):
        w = weights[layer]
        # propagate with the old weights first (below^T = delta^T W / sqrt(N)), then update
        below_t = torch.baddbmm(delta_t, delta_t, w, beta=0.0, alpha=inv_sqrt_n, **_out(spare))
        if ders[layer - 1] is not None:
            below_t.mul_(ders[layer - 1].transpose(1, 2))
        if targets[layer] is not None:
            targets[layer].baddbmm_(
                delta_t.transpose(1, 2), acts[layer - 1].transpose(1, 2),
                beta=beta, alpha=alpha * inv_sqrt_n,
            )
        spare, delta_t = delta_t, below_t  # ping-pong: the old delta's buffer is free now
    if targets[0] is not None:
        N0 = x.shape[1]
        targets[0].baddbmm_(
            delta_t.transpose(1, 2), x.expand(M, P, N0), beta=beta, alpha=alpha / math.sqrt(N0)
        )


class EnsembleNetwork:
    """``M`` independent networks of THEORY.md section 1 in one flat parameter buffer.

    Parameters
    ----------
    members : int
        Ensemble size ``M``.
    input_dim : int
        ``N0``.
    width : int
        ``N``.
    depth : int
        ``L`` hidden layers.
    activation : {"relu", "erf", "linear", "tanh"}
    dtype : torch.dtype
    device : str or torch.device

    Attributes
    ----------
    theta : Tensor, shape (n_params,)
        All parameters, contiguous: ``W1, W2, ..., WL, a``.
    weights : list of Tensor
        Views of ``theta``: ``W1 (M, N, N0)``, ``Wl (M, N, N)``.
    readout : Tensor, shape (M, N)
        View of ``theta``.
    hidden : Tensor, shape (n_hidden,)
        Flat view of the hidden weights (``theta`` without the readout).
    """

    def __init__(
        self,
        *,
        members: int,
        input_dim: int,
        width: int,
        depth: int,
        activation: str = "relu",
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"network.activation must be one of {ACTIVATIONS} (got {activation!r})"
            )
        for name, v in (("members", members), ("input_dim", input_dim), ("width", width),
                        ("depth", depth)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1 (got {v})")
        self.members, self.input_dim, self.width, self.depth = members, input_dim, width, depth
        self.activation = activation
        M, N, N0 = members, width, input_dim
        shapes = [(M, N, N0)] + [(M, N, N)] * (depth - 1) + [(M, N)]
        sizes = [math.prod(s) for s in shapes]
        self.theta = torch.empty(sum(sizes), dtype=dtype, device=device)
        views, offset = [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            views.append(self.theta[offset : offset + size].view(shape))
            offset += size
        self.weights: list[torch.Tensor] = views[:-1]
        self.readout: torch.Tensor = views[-1]
        self.hidden: torch.Tensor = self.theta[: offset - sizes[-1]]

    @property
    def n_params(self) -> int:
        """Total number of parameters of the ensemble."""
        return self.theta.numel()

    @property
    def parameters(self) -> list[torch.Tensor]:
        """``[W1, ..., WL, a]`` (views of :attr:`theta`)."""
        return [*self.weights, self.readout]

    def init_(self, variance: float, generator: torch.Generator | None = None) -> None:
        """Draw every weight i.i.d. from ``N(0, variance)``."""
        self.theta.normal_(0.0, math.sqrt(variance), generator=generator)

    def forward(self, x: torch.Tensor, *, derivatives: bool = False,
                members: slice | None = None, workspace: dict | None = None) -> Forward:
        """Forward pass on stimuli ``x (P, N0)``; ``members`` restricts to a slice;
        ``workspace`` as in :func:`forward`."""
        if members is None:
            weights, readout = self.weights, self.readout
        else:
            weights, readout = [w[members] for w in self.weights], self.readout[members]
        return forward(weights, readout, x, self.activation, derivatives=derivatives,
                       workspace=workspace)

    def loss_and_gradient(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Training loss and its gradient for every member.

        Parameters
        ----------
        x : Tensor, shape (P, N0)
        y : Tensor, shape (P,)

        Returns
        -------
        loss : Tensor, shape (M,)
            ``E = 1/2 sum_mu (f(x_mu) - y_mu)^2``.
        grads : list of Tensor
            ``dE/dW1, ..., dE/dWL, dE/da``, shaped like :attr:`parameters`.
        """
        fwd = self.forward(x, derivatives=True)
        r = fwd.output - y
        grads = [torch.empty_like(p) for p in self.parameters]
        backward_(self.weights, self.readout, x, fwd, r, grads, beta=0.0, alpha=1.0)
        return 0.5 * (r * r).sum(dim=1), grads


def ntk_gram(net: EnsembleNetwork, x: torch.Tensor, members: int | None = None,
             weight_scale: float = 1.0) -> torch.Tensor:
    """Empirical NTK Gram matrix ``K = J J^T`` of (some) members on stimuli ``x``.

    ``J`` is the Jacobian of the outputs w.r.t. all parameters of one member, so
    ``K[mu, nu] = sum_theta df(x_mu)/dtheta df(x_nu)/dtheta``, computed layer by layer as
    ``A_L^T A_L / N + sum_l (B_l^T B_l) o (A_{l-1}^T A_{l-1}) / fan_in_l`` with
    ``B_l = df/dh_l`` (a backward pass with unit residual) and ``A_0 = x``.

    Parameters
    ----------
    net : EnsembleNetwork
    x : Tensor, shape (P, N0)
    members : int, optional
        Use the first ``members`` members only (default all).
    weight_scale : float
        Evaluate at the weights multiplied by this factor (e.g. the ensemble rescaled to
        another weight variance).

    Returns
    -------
    Tensor, shape (m, P, P)
    """
    m = net.members if members is None else min(members, net.members)
    weights = [w[:m] * weight_scale for w in net.weights]
    readout = net.readout[:m] * weight_scale
    N, N0 = net.width, net.input_dim
    fwd = forward(weights, readout, x, net.activation, derivatives=True)
    acts, ders = fwd.activations, fwd.derivatives
    inv_sqrt_n = 1.0 / math.sqrt(N)
    gram = torch.bmm(acts[-1].transpose(1, 2), acts[-1]) / N
    b = readout.unsqueeze(2) * inv_sqrt_n * (ders[-1] if ders[-1] is not None else 1.0)
    b = b.expand(m, N, x.shape[0]).contiguous()
    for layer in range(net.depth - 1, -1, -1):
        bb = torch.bmm(b.transpose(1, 2), b)
        if layer == 0:
            gram += bb * (x @ x.T / N0)
        else:
            gram += bb * torch.bmm(acts[layer - 1].transpose(1, 2), acts[layer - 1]) / N
            b = torch.bmm(weights[layer].transpose(1, 2), b) * inv_sqrt_n
            if ders[layer - 1] is not None:
                b.mul_(ders[layer - 1])
    return gram
