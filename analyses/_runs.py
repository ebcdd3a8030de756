"""Simulation runs as analysis input: their configuration, stimuli and basic checks."""

from __future__ import annotations

import numpy as np
import xarray as xr
import yaml

from drift.config import RunConfig, load_config
from drift.datasets import Dataset, load_dataset

__all__ = ["check_run", "run_config", "run_stimuli", "split_labels", "theory_parameters"]

_RUN_DIMS = ("time", "member", "layer", "unit", "stimulus")


def check_run(run: object, name: str = "run", *, need_output: bool = True) -> xr.Dataset:
    """Check that ``run`` is a simulation dataset of docs/data_format.md.

    Parameters
    ----------
    run : object
        The candidate dataset.
    name : str
        Argument name used in error messages.
    need_output : bool
        Require the ``output`` variable too.

    Returns
    -------
    xarray.Dataset
        ``run`` itself.

    Raises
    ------
    ValueError
        Naming ``name`` and what is missing.
    """
    if not isinstance(run, xr.Dataset):
        raise ValueError(f"{name} must be an xarray.Dataset (got {type(run).__name__})")
    if "activity" not in run:
        raise ValueError(f"{name} has no 'activity' variable")
    missing = [d for d in _RUN_DIMS if d not in run["activity"].dims]
    if missing:
        raise ValueError(
            f"{name}.activity must have dims {_RUN_DIMS} (a simulation run); missing {missing}"
        )
    if need_output and "output" not in run:
        raise ValueError(f"{name} has no 'output' variable")
    if "config" not in run.attrs:
        raise ValueError(f"{name} carries no run configuration (attribute 'config')")
    return run


def split_labels(data: xr.Dataset | xr.DataArray) -> np.ndarray:
    """The ``split`` coordinate as a plain ``str`` array (stores may hold other string dtypes).

    Returns
    -------
    ndarray of str, shape (stimulus,)
        ``"all"`` for every stimulus when there is no ``split`` coordinate.
    """
    if "split" not in data.coords:
        return np.full(data.sizes["stimulus"], "all")
    return np.array([str(v) for v in np.asarray(data["split"].values).tolist()], dtype=str)


def run_config(run: xr.Dataset) -> RunConfig:
    """The configuration a simulation run was made with (its ``config`` attribute).

    Returns
    -------
    drift.config.RunConfig
    """
    if "config" not in run.attrs:
        raise ValueError("run carries no run configuration (attribute 'config')")
    return load_config(yaml.safe_load(run.attrs["config"]))


def _stimulus_hash(x_train, y_train, x_test, y_test) -> str:
    from drift.simulate import data_hash

    return data_hash(x_train, y_train, x_test, y_test)


def run_stimuli(
    run: xr.Dataset, *, x_train: np.ndarray | None = None, x_test: np.ndarray | None = None
) -> Dataset:
    """The stimuli a simulation run was trained and recorded on.

    Regenerated from the run's ``data`` configuration with :func:`drift.datasets.load_dataset`
    unless given; targets always come from the run's ``target`` coordinate (train stimuli
    first, then test, as ``split`` says). When the run stores ``data_sha256`` (every run of
    :func:`drift.simulate.simulate` does) the arrays are checked against it.

    Parameters
    ----------
    run : xarray.Dataset
        A simulation run.
    x_train : ndarray, shape (P, N0), optional
        Training inputs; required when the run was made from explicit arrays
        (attribute ``data_name == "arrays"``).
    x_test : ndarray, shape (P_test, N0), optional
        Test inputs (default: none when ``x_train`` is given).

    Returns
    -------
    drift.datasets.Dataset
        ``x_train (P, N0)``, ``y_train (P,)``, ``x_test (P_test, N0)``, ``y_test (P_test,)``.

    Raises
    ------
    ValueError
        Arrays needed but not given, shapes that do not fit the run's stimuli, or arrays
        whose hash differs from the run's ``data_sha256``.
    """
    split = split_labels(run)
    target = np.asarray(run["target"].values, dtype=np.float64)
    n_train = int(np.sum(split == "train"))
    if not np.all(split[:n_train] == "train") or not np.all(split[n_train:] == "test"):
        raise ValueError("run's 'split' coordinate must list train stimuli first, then test")
    y_train, y_test = target[:n_train], target[n_train:]
    if x_train is None:
        if x_test is not None:
            raise ValueError("x_test was given without x_train")
        if run.attrs.get("data_name") == "arrays":
            raise ValueError(
                "the run was made from explicit arrays (data_name = 'arrays'): pass x_train "
                "(and x_test) to rebuild its stimuli"
            )
        data = load_dataset(run_config(run).data)
        xtr, xte = data.x_train, data.x_test
        name = data.name
    else:
        xtr = np.asarray(x_train, dtype=np.float64)
        xte = np.zeros((0, xtr.shape[1])) if x_test is None else np.asarray(x_test, np.float64)
        name = "arrays"
    if xtr.ndim != 2 or xte.ndim != 2 or xte.shape[1] != xtr.shape[1]:
        raise ValueError(f"x_train and x_test must be 2-d with equal columns "
                         f"(got {xtr.shape} and {xte.shape})")
    if xtr.shape[0] != y_train.size or xte.shape[0] != y_test.size:
        raise ValueError(
            f"the run has {y_train.size} train and {y_test.size} test stimuli; the inputs "
            f"have {xtr.shape[0]} and {xte.shape[0]} rows"
        )
    stored = run.attrs.get("data_sha256")
    if stored and _stimulus_hash(xtr, y_train, xte, y_test) != stored:
        raise ValueError(
            "the stimuli do not match the run (their hash differs from the run's "
            "data_sha256): pass the arrays the run was made from"
        )
    return Dataset(xtr, y_train, xte, y_test, name)


def theory_parameters(cfg: RunConfig) -> dict:
    """Keyword arguments of the :mod:`drift.theory` predictors for a configuration.

    Returns
    -------
    dict
        ``depth``, ``activation``, ``temperature``, ``prior_variance``, ``init_variance``.
    """
    dyn = cfg.dynamics
    return {
        "depth": cfg.network.depth,
        "activation": cfg.network.activation,
        "temperature": dyn.temperature,
        "prior_variance": dyn.prior_variance,
        "init_variance": dyn.init_variance,
    }
