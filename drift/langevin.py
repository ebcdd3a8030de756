"""Exact Ornstein-Uhlenbeck (Langevin) steps for an ensemble, and the stable step size.

THEORY.md section 2: ``dTheta = -grad E dt - lambda Theta dt + sqrt(2 T) dB`` with
``lambda = T / sigma2``. The linear part is integrated exactly, so that without data the
weight variance is exact for any ``dt``::

    Theta <- exp(-lambda dt) Theta - dt * grad E + sqrt(sigma2 (1 - exp(-2 lambda dt))) xi

``T = 0`` is plain gradient descent (no decay, no noise, no random numbers drawn).

Memory passes per step: the decay and the gradient are fused into the GEMMs of the
backward pass (``W <- beta W + alpha dW`` via ``baddbmm_``); the noise is drawn into a
preallocated buffer and added in one in-place pass. On the CPU the noise is drawn and
added block by block, so that each block is still in cache when it is added.
"""

from __future__ import annotations

import math

import torch

from drift.network import EnsembleNetwork, backward_, ntk_gram

__all__ = [
    "LangevinIntegrator",
    "max_eigenvalue",
    "ou_coefficients",
    "stable_dt_bound",
]

_CPU_NOISE_BLOCK = 1 << 18  # elements drawn and added at once on the CPU


def ou_coefficients(dt: float, temperature: float, prior_variance: float) -> tuple[float, float]:
    """Decay factor and noise standard deviation of one exact OU step.

    Parameters
    ----------
    dt : float
        Step (time units of the dynamics).
    temperature : float
        ``T >= 0``.
    prior_variance : float
        ``sigma2 > 0``.

    Returns
    -------
    decay : float
        ``exp(-lambda dt)`` with ``lambda = T / sigma2`` (exactly 1 for ``T = 0``).
    noise_std : float
        ``sqrt(sigma2 (1 - exp(-2 lambda dt)))`` (exactly 0 for ``T = 0``).
    """
    if dt <= 0:
        raise ValueError(f"dynamics.dt must be > 0 (got {dt})")
    rate = temperature / prior_variance
    decay = math.exp(-rate * dt)
    noise_std = math.sqrt(prior_variance * -math.expm1(-2.0 * rate * dt))
    return decay, noise_std


class LangevinIntegrator:
    """Advances an :class:`~drift.network.EnsembleNetwork` by exact OU steps, in place.

    Parameters
    ----------
    net : EnsembleNetwork
    x_train : Tensor, shape (P, N0)
        Training stimuli (``P = 0`` is allowed: no learning signal, pure prior dynamics).
    y_train : Tensor, shape (P,)
    dt : float
        Step (time units of the dynamics).
    temperature, prior_variance : float
        ``T`` and ``sigma2``.
    generator : torch.Generator
        Source of the noise (on the network's device).
    """

    def __init__(
        self,
        net: EnsembleNetwork,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        *,
        dt: float,
        temperature: float,
        prior_variance: float,
        generator: torch.Generator | None,
    ) -> None:
        self.net = net
        self.x = x_train
        self.y = y_train
        self.dt = float(dt)
        self.decay, self.noise_std = ou_coefficients(dt, temperature, prior_variance)
        self.generator = generator
        self.workspace: dict = {}  # activation and delta buffers reused by every step
        self.noise: torch.Tensor | None = None
        if self.noise_std > 0:
            theta = net.theta
            size = theta.numel() if theta.device.type != "cpu" else min(
                theta.numel(), _CPU_NOISE_BLOCK
            )
            self.noise = torch.empty(size, dtype=theta.dtype, device=theta.device)

    @property
    def n_train(self) -> int:
        return int(self.x.shape[0])

    def step(self, *, learn: bool = True, freeze_readout: bool = False) -> torch.Tensor | None:
        """One exact OU step of every member.

        Parameters
        ----------
        learn : bool
            Include the gradient of the training loss (False: prior dynamics only).
        freeze_readout : bool
            Leave the readout ``a`` untouched (no gradient, decay or noise on it).

        Returns
        -------
        Tensor, shape (M,), or None
            Training loss of each member *before* the step (None when no gradient was
            computed). Not synchronised: reading it on a GPU waits for the step.
        """
        net = self.net
        part = net.hidden if freeze_readout else net.theta
        loss = None
        fused = False
        if learn and self.n_train > 0:
            fwd = net.forward(self.x, derivatives=True, workspace=self.workspace)
            r = fwd.output.sub_(self.y)
            loss = 0.5 * (r * r).sum(dim=1)
            targets = [*net.weights, None if freeze_readout else net.readout]
            backward_(
                net.weights, net.readout, self.x, fwd, r, targets,
                beta=self.decay, alpha=-self.dt, workspace=self.workspace,
            )
            fused = True
        if self.noise is not None:
            self._add_noise_(part, decay=1.0 if fused else self.decay)
        elif not fused and self.decay != 1.0:
            part.mul_(self.decay)
        return loss

    def _add_noise_(self, part: torch.Tensor, decay: float) -> None:
        """``part <- decay * part + noise_std * xi`` in one pass (per cache-sized block)."""
        buf = self.noise
        n = part.numel()
        block = buf.numel()
        for start in range(0, n, block):
            chunk = part[start : start + block]
            noise = buf[: chunk.numel()]
            noise.normal_(0.0, self.noise_std, generator=self.generator)
            if decay == 1.0:
                chunk.add_(noise)
            else:
                torch.add(noise, chunk, alpha=decay, out=chunk)


def max_eigenvalue(sym: torch.Tensor) -> torch.Tensor:
    """Largest eigenvalue of symmetric matrices.

    Dense ``eigvalsh`` (float64) up to 2048 x 2048; LOBPCG (one vector, relative
    tolerance 1e-8) beyond, one matrix at a time.

    Parameters
    ----------
    sym : Tensor, shape (..., P, P)

    Returns
    -------
    Tensor, shape (...)
    """
    P = sym.shape[-1]
    if P == 0:
        return sym.new_zeros(sym.shape[:-2])
    if P <= 2048:
        return torch.linalg.eigvalsh(sym.double())[..., -1].to(sym.dtype)
    flat = sym.reshape(-1, P, P).double()
    tops = [torch.lobpcg(m, k=1, largest=True, tol=1e-8, niter=500)[0][0] for m in flat]
    return torch.stack(tops).reshape(sym.shape[:-2]).to(sym.dtype)


def stable_dt_bound(
    net: EnsembleNetwork,
    x_train: torch.Tensor,
    *,
    members: int = 8,
    weight_scales: tuple[float, ...] = (1.0,),
) -> float:
    """Largest safe step ``dt_max = 1 / max eig(NTK Gram on the training set)``.

    The empirical NTK of the first ``members`` members is evaluated at their current
    weights multiplied by each of ``weight_scales`` (e.g. ``sqrt(sigma2 / sigma02)`` for
    the weight variance the diffusive phase relaxes to) and the largest eigenvalue
    over all of them is used. ``dt * max eig < 1`` keeps every gradient mode stable and
    resolved (gradient descent diverges for ``dt * max eig > 2``).

    Returns
    -------
    float
        ``inf`` without training data.
    """
    if x_train.shape[0] == 0:
        return math.inf
    top = 0.0
    for scale in weight_scales:
        gram = ntk_gram(net, x_train, members=members, weight_scale=scale)
        top = max(top, float(max_eigenvalue(gram).max()))
    return math.inf if top <= 0 else 1.0 / top
