"""Representational-drift analyses on the project's xarray format.

Every function takes activity with dims ``time``, ``unit``, ``stimulus`` (plus batch dims
``member``, ``layer``, ``trial``, which are kept), tolerates NaN for untracked units
(pairwise-complete statistics with the number of units used alongside), works on
dask-backed arrays, and returns labelled xarray results. See docs/data_format.md.

Simulation runs meet the theory in :mod:`analyses.theory` (NDK predictions beside the
measurements, in standard errors) and recordings in :mod:`analyses.compare` (drift of
model and brain on one time axis); see docs/analyses.md.
"""

from analyses.drift_rates import (
    decompose_pv_decorrelation,
    drift_curve,
    drift_index,
    ensemble_rate_correlation,
    fit_drift,
    fit_exponential,
    fraction_stable,
    normalised_index,
    pv_correlation,
    rate_change_index,
    tuning_correlation,
)
from analyses.elapsed import by_elapsed_time
from analyses.readout import (
    cross_temporal_decoding,
    fixed_decoder,
    output_accuracy,
    retrained_decoder,
    template_matching,
)
from analyses.similarity import cka, procrustes_distance, rsa, rsm
from analyses.synthetic import expected_pv_correlation, ou_population

# The model-facing analyses need the simulation package (and torch); they load on first
# use so that analysing recordings stays light.
_LAZY = {
    "compare_model_to_recording": "analyses.compare",
    "theory_pv_correlation": "analyses.compare",
    "fixed_decoder_beside_theory": "analyses.theory",
    "frozen_readout_beside_theory": "analyses.theory",
    "run_config": "analyses.theory",
    "run_stimuli": "analyses.theory",
    "theory_beside_data": "analyses.theory",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'analyses' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "by_elapsed_time",
    "cka",
    "compare_model_to_recording",
    "cross_temporal_decoding",
    "decompose_pv_decorrelation",
    "drift_curve",
    "drift_index",
    "ensemble_rate_correlation",
    "expected_pv_correlation",
    "fit_drift",
    "fit_exponential",
    "fixed_decoder",
    "fixed_decoder_beside_theory",
    "fraction_stable",
    "frozen_readout_beside_theory",
    "normalised_index",
    "ou_population",
    "output_accuracy",
    "procrustes_distance",
    "pv_correlation",
    "rate_change_index",
    "retrained_decoder",
    "rsa",
    "rsm",
    "run_config",
    "run_stimuli",
    "template_matching",
    "theory_beside_data",
    "theory_pv_correlation",
    "tuning_correlation",
]
