"""Representational-drift analyses on the project's xarray format.

Every function takes activity with dims ``time``, ``unit``, ``stimulus`` (plus batch dims
``member``, ``layer``, ``trial``, which are kept), tolerates NaN for untracked units
(pairwise-complete statistics with the number of units used alongside), works on
dask-backed arrays, and returns labelled xarray results. See docs/data_format.md.
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

__all__ = [
    "by_elapsed_time",
    "cka",
    "cross_temporal_decoding",
    "decompose_pv_decorrelation",
    "drift_curve",
    "drift_index",
    "ensemble_rate_correlation",
    "expected_pv_correlation",
    "fit_drift",
    "fit_exponential",
    "fixed_decoder",
    "fraction_stable",
    "normalised_index",
    "ou_population",
    "output_accuracy",
    "procrustes_distance",
    "pv_correlation",
    "rate_change_index",
    "retrained_decoder",
    "rsa",
    "rsm",
    "template_matching",
    "tuning_correlation",
]
