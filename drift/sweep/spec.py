"""Sweep specifications: a base run plus lists of values for configuration keys.

A sweep spec (a YAML file or a mapping) reads::

    base: run.yaml                  # a run YAML (relative to this file) or an inline mapping
    mode: grid                      # grid (cartesian product, default) or zip
    parameters:                     # dotted configuration keys -> lists of values
      dynamics.temperature: [0.01, 0.05]
      network.width: [64, 128]
      ensemble.seed: [0, 1]
    dims:                           # optional: dimension names in the combined dataset
      dynamics.temperature: T

:func:`load_sweep_spec` validates the whole spec up front: every key must be a key of
:class:`drift.config.RunConfig`, and every combination must pass
:func:`drift.config.load_config`; errors are :class:`SweepSpecError` (a ``ValueError``)
naming the offending key and, for a bad combination, the values that make it.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from drift.config import ConfigError, RunConfig, config_to_dict, load_config

__all__ = [
    "MODES",
    "RESERVED_DIMS",
    "SweepParameter",
    "SweepSpec",
    "SweepSpecError",
    "SweepTask",
    "load_sweep_spec",
]

MODES = ("grid", "zip")
SPEC_KEYS = ("base", "mode", "parameters", "dims")
#: Names that a sweep dimension may not take: the dims, coordinates and analysis outputs
#: of the data format, and the coordinates that :func:`drift.sweep.open_sweep` adds.
RESERVED_DIMS = frozenset({
    "time", "member", "layer", "unit", "stimulus", "trial", "step", "split", "target",
    "run", "store", "complete", "time_ref", "elapsed", "bound", "boot",
})
_MAX_ERRORS = 5  # bad combinations listed in one error message
_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_.+-]+")


class SweepSpecError(ConfigError):
    """A sweep spec is malformed, or one of its combinations is not a valid run."""


@dataclass(frozen=True)
class SweepParameter:
    """One swept configuration key.

    Attributes
    ----------
    key : str
        Dotted configuration key, e.g. ``"dynamics.temperature"``.
    dim : str
        Name of its dimension (grid) or coordinate (zip) in the combined dataset.
    values : tuple
        The values, as the validated configuration holds them (e.g. ``16`` for a width
        given as ``16.0``).
    """

    key: str
    dim: str
    values: tuple


@dataclass(frozen=True)
class SweepTask:
    """One run of a sweep.

    Attributes
    ----------
    index : int
        Position in the task list (grid: row-major over the parameters, the last varying
        fastest; zip: the position in the value lists).
    name : str
        Directory name of its run store under the sweep directory: the swept values,
        readable, plus a hash of them (``"T=0.01_width=64_seed=0-1f3a9c2e.zarr"``).
    values : dict
        Swept key -> value of this run.
    position : tuple of int
        Grid: the index of each parameter's value; zip: ``(index,)``.
    config : dict
        The full validated run configuration (:func:`drift.config.config_to_dict`).
    """

    index: int
    name: str
    values: dict
    position: tuple
    config: dict


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base configuration, swept parameters, mode and tasks.

    Attributes
    ----------
    base : dict
        The base configuration tree as given (keys not set take their defaults).
    parameters : tuple of SweepParameter
    mode : {"grid", "zip"}
    tasks : tuple of SweepTask
    """

    base: dict
    parameters: tuple[SweepParameter, ...]
    mode: str
    tasks: tuple[SweepTask, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid: number of values of each parameter; zip: ``(n_runs,)``."""
        if self.mode == "grid":
            return tuple(len(p.values) for p in self.parameters)
        return (len(self.tasks),)

    def to_dict(self) -> dict:
        """JSON-serialisable spec (base inline) that :func:`load_sweep_spec` accepts."""
        return {
            "base": self.base,
            "mode": self.mode,
            "parameters": {p.key: list(p.values) for p in self.parameters},
            "dims": {p.key: p.dim for p in self.parameters},
        }


# ------------------------------------------------------------------------ helpers


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {name: f.annotation for name, f in model.model_fields.items()}


def _check_key(key: str) -> None:
    """Raise unless ``key`` names a field (leaf or section) of :class:`RunConfig`."""
    if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
        raise SweepSpecError(f"parameters: {key!r} is not a dotted configuration key")
    model: type[BaseModel] | None = RunConfig
    walked = []
    for part in key.split("."):
        if model is None:
            raise SweepSpecError(
                f"parameters.{key}: {'.'.join(walked)!r} is a value, not a section"
            )
        fields = _fields(model)
        if part not in fields:
            where = ".".join(walked) or "the configuration"
            close = difflib.get_close_matches(part, list(fields), n=1)
            hint = f"; did you mean {'.'.join([*walked, close[0]])!r}?" if close else ""
            raise SweepSpecError(
                f"parameters.{key}: {part!r} is not a key of {where} "
                f"(keys: {', '.join(fields)}){hint}"
            )
        walked.append(part)
        ann = fields[part]
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _get_dotted(tree: Mapping, key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        node = node[part]
    return node


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _label(value: Any) -> str:
    """Short, filesystem-safe text of a value (the hash in the name keeps names unique)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bool, int, float)) or value is None:
        text = json.dumps(value)
    else:
        text = "obj"
    text = _LABEL_CHARS.sub("-", text).strip("-") or "x"
    return text[:24]


def store_name(values: Mapping[str, Any], dims: Mapping[str, str]) -> str:
    """Deterministic store directory name of a run from its swept values.

    Parameters
    ----------
    values : mapping
        Swept key -> (validated) value.
    dims : mapping
        Swept key -> dimension name.

    Returns
    -------
    str
        ``"<dim>=<value>_<dim>=<value>...-<hash>.zarr"``; the 8-hex-digit hash is of the
        canonical JSON of ``values``, so distinct values give distinct names however the
        readable part is shortened.
    """
    readable = "_".join(f"{_label(dims[k])}={_label(v)}" for k, v in values.items())
    digest = hashlib.sha256(_canonical(dict(values)).encode()).hexdigest()[:8]
    return f"{readable[:120]}-{digest}.zarr"


def _read_spec(spec: str | Path | Mapping) -> tuple[dict, Path | None]:
    if isinstance(spec, Mapping):
        return json.loads(json.dumps(dict(spec))), None
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise SweepSpecError(f"sweep spec {str(path)!r} does not exist")
        try:
            tree = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SweepSpecError(f"sweep spec {str(path)!r} is not valid YAML: {exc}") from None
        if not isinstance(tree, dict):
            raise SweepSpecError(f"sweep spec {str(path)!r} must hold a mapping")
        return tree, path.parent
    raise SweepSpecError(
        f"a sweep spec must be a YAML path or a mapping (got {type(spec).__name__})"
    )


def _read_base(base: Any, root: Path | None) -> dict:
    if base is None:
        return {}
    if isinstance(base, RunConfig):
        return config_to_dict(base)
    if isinstance(base, Mapping):
        return json.loads(json.dumps(dict(base)))
    if isinstance(base, (str, Path)):
        path = Path(base)
        if not path.is_absolute() and root is not None:
            path = root / path
        if not path.is_file():
            raise SweepSpecError(f"base: run configuration {str(path)!r} does not exist")
        try:
            tree = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SweepSpecError(f"base: {str(path)!r} is not valid YAML: {exc}") from None
        if not isinstance(tree, dict):
            raise SweepSpecError(f"base: {str(path)!r} must hold a mapping of sections")
        return tree
    raise SweepSpecError(
        f"base: must be a run YAML path or a mapping of sections (got {type(base).__name__})"
    )


def _read_parameters(raw: Any) -> dict[str, list]:
    if not isinstance(raw, Mapping) or not raw:
        raise SweepSpecError(
            "parameters: give a mapping of dotted configuration keys to lists of values, "
            "e.g. {dynamics.temperature: [0.01, 0.05]}"
        )
    params: dict[str, list] = {}
    for key, values in raw.items():
        _check_key(key)
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
            raise SweepSpecError(
                f"parameters.{key}: must be a non-empty list of values (got {values!r})"
            )
        if len(values) == 0:
            raise SweepSpecError(f"parameters.{key}: the list of values is empty")
        try:
            json.dumps(list(values))
        except (TypeError, ValueError):
            raise SweepSpecError(
                f"parameters.{key}: values must be plain data (numbers, strings, booleans, "
                f"null, lists, mappings); got {values!r}"
            ) from None
        params[key] = list(values)
    keys = list(params)
    for a, b in itertools.permutations(keys, 2):
        if b.startswith(a + "."):
            raise SweepSpecError(
                f"parameters: {b!r} lies inside {a!r}; sweep either the section or its key"
            )
    return params


def _dim_names(keys: list[str], given: Any) -> dict[str, str]:
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise SweepSpecError(f"dims: must map swept keys to names (got {given!r})")
    for key in given:
        if key not in keys:
            raise SweepSpecError(f"dims.{key}: not a swept key (swept: {', '.join(keys)})")
    last = [k.split(".")[-1] for k in keys]
    dims = {}
    for key, short in zip(keys, last, strict=True):
        if key in given:
            name = given[key]
            if not isinstance(name, str) or not name.isidentifier():
                raise SweepSpecError(f"dims.{key}: must be an identifier (got {name!r})")
            if name in RESERVED_DIMS:
                raise SweepSpecError(
                    f"dims.{key}: {name!r} is already a dimension or coordinate of the data "
                    "format; choose another name"
                )
        elif last.count(short) > 1 or short in RESERVED_DIMS:
            name = key.replace(".", "_")
        else:
            name = short
        dims[key] = name
    owners: dict[str, str] = {}
    for key, name in dims.items():
        if name in owners:
            raise SweepSpecError(
                f"dims.{key}: dimension name {name!r} is also that of {owners[name]!r}; "
                "set distinct names under `dims`"
            )
        owners[name] = key
    return dims


def _combinations(params: dict[str, list], mode: str) -> list[tuple[tuple, dict]]:
    keys = list(params)
    if mode == "grid":
        ranges = [range(len(params[k])) for k in keys]
        return [
            (pos, {k: params[k][i] for k, i in zip(keys, pos, strict=True)})
            for pos in itertools.product(*ranges)
        ]
    lengths = {k: len(v) for k, v in params.items()}
    if len(set(lengths.values())) > 1:
        text = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise SweepSpecError(
            f"parameters: mode 'zip' needs lists of equal length (got {text})"
        )
    n = next(iter(lengths.values()))
    return [((i,), {k: params[k][i] for k in keys}) for i in range(n)]


def _values_text(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


# ----------------------------------------------------------------------------- public


def load_sweep_spec(spec: str | Path | Mapping | SweepSpec) -> SweepSpec:
    """Read and validate a sweep spec; build its tasks.

    Parameters
    ----------
    spec : str, Path, mapping or SweepSpec
        A YAML file or a mapping with keys ``base`` (a run YAML path, relative to the
        spec file, or an inline mapping of sections; default: the defaults of
        :class:`drift.config.RunConfig`), ``parameters`` (dotted key -> list of values),
        ``mode`` (``grid``, the default, or ``zip``) and ``dims`` (optional dotted key ->
        dimension name; default the last part of the key, or the whole key with dots
        replaced by underscores when two keys end alike or the name is taken).

    Returns
    -------
    SweepSpec
        With one :class:`SweepTask` per combination.

    Raises
    ------
    SweepSpecError
        (a ``ValueError``) naming the offending key: an unknown spec or configuration
        key, an empty or non-list value list, a repeated value, zip lists of unequal
        length, or combinations that :func:`drift.config.load_config` rejects (the first
        few are listed with their values and the configuration's message).
    """
    if isinstance(spec, SweepSpec):
        return spec
    tree, root = _read_spec(spec)
    unknown = sorted(set(tree) - set(SPEC_KEYS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], SPEC_KEYS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SweepSpecError(
            f"sweep spec: unknown key(s) {unknown} (expected {', '.join(SPEC_KEYS)}){hint}"
        )
    mode = tree.get("mode", "grid")
    if mode not in MODES:
        raise SweepSpecError(f"mode: must be 'grid' or 'zip' (got {mode!r})")
    base = _read_base(tree.get("base"), root)
    params = _read_parameters(tree.get("parameters"))
    keys = list(params)
    dims = _dim_names(keys, tree.get("dims"))

    combos = _combinations(params, mode)
    errors: list[str] = []
    configs: list[dict] = []
    for _, values in combos:
        try:
            cfg = load_config(base, overrides=values)
        except ConfigError as exc:
            lines = str(exc).splitlines()
            detail = "; ".join(line.strip() for line in lines[1:]) or lines[0]
            errors.append(f"  [{_values_text(values)}] {detail}")
            configs.append({})
            continue
        configs.append(config_to_dict(cfg))
    if errors:
        more = f"\n  ... and {len(errors) - _MAX_ERRORS} more" if len(errors) > _MAX_ERRORS else ""
        raise SweepSpecError(
            f"sweep spec: {len(errors)} of {len(combos)} combinations are not valid runs:\n"
            + "\n".join(errors[:_MAX_ERRORS]) + more
        )

    # the values as the validated configurations hold them
    normal = [{k: _get_dotted(cfg, k) for k in keys} for cfg in configs]
    parameters = []
    for j, key in enumerate(keys):
        if mode == "grid":
            vals = []
            for i in range(len(params[key])):
                first = next(n for (pos, _), n in zip(combos, normal, strict=True) if pos[j] == i)
                vals.append(first[key])
            seen: dict[str, int] = {}
            for i, v in enumerate(vals):
                c = _canonical(v)
                if c in seen:
                    raise SweepSpecError(
                        f"parameters.{key}: values {params[key][seen[c]]!r} and "
                        f"{params[key][i]!r} are the same run setting; list each value once"
                    )
                seen[c] = i
        else:
            vals = [n[key] for n in normal]
        parameters.append(SweepParameter(key=key, dim=dims[key], values=tuple(vals)))
    if mode == "zip":
        seen = {}
        for i, n in enumerate(normal):
            c = _canonical(n)
            if c in seen:
                raise SweepSpecError(
                    f"parameters: runs {seen[c]} and {i} of the zip have the same values "
                    f"({_values_text(n)}); list each run once"
                )
            seen[c] = i
    tasks = tuple(
        SweepTask(index=i, name=store_name(n, dims), values=n, position=pos, config=cfg)
        for i, ((pos, _), n, cfg) in enumerate(zip(combos, normal, configs, strict=True))
    )
    return SweepSpec(base=base, parameters=tuple(parameters), mode=mode, tasks=tasks)
