"""The theory run of a configuration: ``drift theory CONFIG --out FILE.nc``.

Evaluates the NDK predictions for the configured network, dynamics and dataset at the
configured record times and gathers them into one ``xarray.Dataset`` in the project
format (``kind = "theory"``), with the full configuration in its attrs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from drift.config import RunConfig, config_to_yaml, load_config
from drift.datasets import Dataset, load_dataset
from drift.theory import (
    equilibrium_posterior,
    hidden_autocorrelation,
    mean_predictor,
    time_scales,
)

__all__ = ["theory_from_config", "write_netcdf"]


def theory_from_config(
    config: str | Path | dict | RunConfig | None = None,
    *,
    dataset: Dataset | None = None,
    times=None,
    progress: bool = False,
) -> xr.Dataset:
    """NDK predictions for a run configuration.

    Parameters
    ----------
    config : YAML path, dict, RunConfig or None (defaults)
    dataset : Dataset, optional
        Arrays to use instead of the configured dataset.
    times : array_like, optional
        Times instead of ``config.record_times()``.
    progress : bool
        Show progress bars.

    Returns
    -------
    xarray.Dataset
        ``output_mean``, ``output_mean_error``, ``residual`` over (time, stimulus);
        ``posterior_mean``, ``posterior_variance`` over stimulus (t -> inf);
        ``train_loss`` and ``test_error`` over time (``1/2 sum (f - y)^2`` on the training
        set and mean squared error on the test set); ``hidden_correlation`` over
        (layer, time): the two-time correlation of each layer's representation with
        itself at t = 0, averaged over stimuli. Attrs hold the configuration (YAML), the
        time scales and the solver's error estimate.
    """
    cfg = load_config(config)
    data = dataset if dataset is not None else load_dataset(cfg.data)
    t = np.asarray(cfg.record_times() if times is None else times, float)
    dyn, net = cfg.dynamics, cfg.network
    kw = dict(depth=net.depth, activation=net.activation, temperature=dyn.temperature,
              prior_variance=dyn.prior_variance)
    ds = mean_predictor(data.x_train, data.y_train, data.x_test, t, y_test=data.y_test,
                        init_variance=dyn.init_variance, progress=progress, **kw)
    post = equilibrium_posterior(data.x_train, data.y_train, data.x_test, **kw)
    ds["posterior_mean"] = post["posterior_mean"]
    ds["posterior_variance"] = post["posterior_variance"]
    is_train = ds["split"] == "train"
    err = ds["output_mean"] - ds["target"]
    ds["train_loss"] = (0.5 * (err.where(is_train) ** 2).sum("stimulus")).assign_attrs(
        long_name="training loss of the mean output, 1/2 sum (f - y)^2", units="target units^2")
    if (~is_train).any():
        ds["test_error"] = ((err.where(~is_train) ** 2).mean("stimulus")).assign_attrs(
            long_name="test mean squared error of the mean output", units="target units^2")
    x_all = np.concatenate([data.x_train, data.x_test])
    rows = []
    for layer in range(1, net.depth + 1):
        ac = hidden_autocorrelation(x_all, 0.0, t, layer=layer, init_variance=dyn.init_variance,
                                    **kw)
        rows.append(ac["correlation"].mean("stimulus").values)
    ds["hidden_correlation"] = xr.DataArray(
        np.array(rows), dims=("layer", "time"),
        coords={"layer": np.arange(1, net.depth + 1), "time": ds["time"]},
        attrs={"long_name": "correlation of the layer representation with itself at t = 0",
               "units": "1"},
    )
    scales = time_scales(data.x_train, init_variance=dyn.init_variance, **kw)
    ds.attrs.update(
        config=config_to_yaml(cfg),
        dataset=data.name,
        gradient_time=float(scales["gradient_time"]),
        diffusive_time=float(scales["diffusive_time"]),
        max_gradient_rate=float(scales["gradient_rates"][0]),
        stable_dt=float(scales["stable_dt"]),
    )
    return ds


def write_netcdf(ds: xr.Dataset, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``ds`` to a netCDF file atomically (temporary file, then rename).

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    tmp.replace(path)
    return path
