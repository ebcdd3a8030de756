"""A tiny simulated ensemble shared by the theory-beside-data and model-vs-recording tests.

Width 128, 48 members, depth 2, 6 train + 3 test stimuli (balanced labels), every unit
recorded. ``sigma2 = 2`` and ``T = 0.1`` keep the finite-width load
(:func:`analyses.theory.finite_width_load`) near 0.05, so a correct theory stays within
Monte-Carlo error; ``1 / lambda = 20`` and a duration of 30 show both learning phases.
"""

from __future__ import annotations

import copy
import functools

import torch
import xarray as xr

from drift.simulate import simulate

TINY_CONFIG = {
    "network": {"depth": 2, "width": 128, "activation": "relu"},
    "dynamics": {"temperature": 0.1, "prior_variance": 2.0, "init_variance": 1.0,
                 "dt": 0.025, "duration": 30.0},
    "data": {"name": "synthetic", "n_train": 6, "n_test": 3, "input_dim": 10, "seed": 6},
    "record": {"n_times": 14, "units": None, "first_time": 0.1},
    "ensemble": {"members": 48, "seed": 1},
    "device": "cpu",
    "dtype": "float32",
}


def tiny_config(**overrides) -> dict:
    """A copy of :data:`TINY_CONFIG` with dotted-key overrides (``"ensemble.members"``)."""
    cfg = copy.deepcopy(TINY_CONFIG)
    for key, value in overrides.items():
        section, name = key.split(".")
        cfg[section][name] = value
    return cfg


@functools.lru_cache(maxsize=1)
def tiny_run() -> xr.Dataset:
    """The simulated run (computed once per test session, one torch thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return simulate(tiny_config(), progress=False)
    finally:
        torch.set_num_threads(before)
