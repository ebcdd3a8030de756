"""The Neural Dynamical Kernel theory (THEORY.md) as library calls on plain arrays.

Kernels (section 4): :func:`two_time_kernels`, :func:`nngp`, :func:`ntk`,
:func:`kernel_stack` (the layer recursion in terms of the prior correlation).
Predictors (sections 5-6): :func:`mean_predictor`, :func:`equilibrium_posterior`,
:func:`output_variance`, :func:`frozen_readout`, :func:`fixed_decoder`,
:func:`hidden_kernel`, :func:`hidden_autocorrelation`, :func:`time_scales`.
From a run configuration: :func:`theory_from_config`.
"""

from drift.theory.activations import ACTIVATIONS, Activation, get_activation
from drift.theory.kernels import kernel_stack, nngp, ntk, two_time_kernels
from drift.theory.predictors import (
    equilibrium_posterior,
    fixed_decoder,
    frozen_readout,
    hidden_autocorrelation,
    hidden_kernel,
    mean_predictor,
    output_variance,
    time_scales,
)
from drift.theory.prior import decay_rate, prior_correlation

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "get_activation",
    "kernel_stack",
    "nngp",
    "ntk",
    "two_time_kernels",
    "equilibrium_posterior",
    "fixed_decoder",
    "frozen_readout",
    "hidden_autocorrelation",
    "hidden_kernel",
    "mean_predictor",
    "output_variance",
    "time_scales",
    "decay_rate",
    "prior_correlation",
]
