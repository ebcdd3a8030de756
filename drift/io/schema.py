"""Check a dataset against the ndk-drift data format (docs/data_format.md).

:func:`validate_dataset` collects every violation it finds and raises one
``ValueError`` that lists them, each naming the variable, coordinate or attribute and
what is wrong with it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KINDS",
    "MODEL_VARIABLES",
    "validate_dataset",
]

FORMAT_NAME = "ndk-drift"
FORMAT_VERSION = 1
KINDS = ("simulation", "theory", "recording")

# canonical order of the dims of `activity`; optional ones in brackets in the docs
_ACTIVITY_ORDER = ("time", "member", "layer", "unit", "stimulus", "trial")

# dims of the model variables (exact)
MODEL_VARIABLES = {
    "activity": ("time", "member", "layer", "unit", "stimulus"),
    "output": ("time", "member", "stimulus"),
    "readout": ("time", "member", "unit"),
    "loss": ("time", "member"),
}
_THEORY_VARIABLES = {
    "output_mean": ("time", "stimulus"),
    "output_mean_error": ("time", "stimulus"),
}
_SPLITS = {
    "simulation": {"train", "test"},
    "theory": {"train", "test"},
    "recording": {"train", "test", "all"},
}


def _is_int_sequence(values: np.ndarray) -> bool:
    return values.dtype.kind in "iu" or (
        values.dtype.kind == "f" and bool(np.all(np.isfinite(values)))
        and bool(np.all(values == np.round(values)))
    )


def _check_index(ds: xr.Dataset, name: str, problems: list[str], start: int = 0) -> None:
    """Coordinate ``name`` on dim ``name`` must hold integers start..start+n-1."""
    if name not in ds.dims:
        return
    if name not in ds.coords:
        problems.append(f"coordinate `{name}` is missing (dim `{name}` has no labels)")
        return
    values = np.asarray(ds[name].values)
    if ds[name].dims != (name,):
        problems.append(f"coordinate `{name}` must lie on dim `{name}` (has dims {ds[name].dims})")
        return
    if not _is_int_sequence(values):
        problems.append(f"coordinate `{name}` must hold integers (got dtype {values.dtype})")
        return
    expected = np.arange(start, start + values.size)
    if name == "layer":
        if values.size and (values.min() < 1 or np.any(np.diff(values) <= 0)):
            problems.append(
                f"coordinate `layer` must hold strictly increasing layer numbers >= 1 "
                f"(got {values.tolist()})"
            )
    elif not np.array_equal(values, expected):
        shown = values.tolist() if values.size <= 10 else f"{values[:5].tolist()}..."
        problems.append(
            f"coordinate `{name}` must be {start}..{start + values.size - 1} in order (got {shown})"
        )


def _check_time(ds: xr.Dataset, kind: str, problems: list[str]) -> None:
    if "time" not in ds.dims:
        problems.append("dim `time` is missing")
        return
    if "time" not in ds.coords:
        problems.append("coordinate `time` is missing")
        return
    t = ds["time"]
    if t.dims != ("time",):
        problems.append(f"coordinate `time` must lie on dim `time` (has dims {t.dims})")
        return
    values = np.asarray(t.values)
    if values.dtype.kind not in "iuf":
        problems.append(f"coordinate `time` must be numeric (got dtype {values.dtype})")
        return
    if not np.all(np.isfinite(values)):
        problems.append("coordinate `time` holds NaN or inf")
        return
    if values.size > 1 and np.any(np.diff(values) <= 0):
        bad = int(np.flatnonzero(np.diff(values) <= 0)[0])
        problems.append(
            f"coordinate `time` must be strictly increasing "
            f"(time[{bad}] = {values[bad]} >= time[{bad + 1}] = {values[bad + 1]})"
        )
    if kind == "simulation" and values.size and values[0] != 0:
        problems.append(f"coordinate `time` of a simulation must start at 0 (got {values[0]})")
    if kind in ("simulation", "theory") and values.size and values[0] < 0:
        problems.append(f"coordinate `time` must be >= 0 (got {values[0]})")
    if "units" not in t.attrs:
        problems.append("coordinate `time` lacks a `units` attribute")


def _check_stimulus(ds: xr.Dataset, kind: str, problems: list[str]) -> None:
    if "stimulus" not in ds.dims:
        problems.append("dim `stimulus` is missing")
        return
    _check_index(ds, "stimulus", problems)
    for name in ("split", "target"):
        if name not in ds.coords:
            problems.append(f"coordinate `{name}` (on dim `stimulus`) is missing")
        elif ds[name].dims != ("stimulus",):
            problems.append(f"coordinate `{name}` must lie on dim `stimulus` (has {ds[name].dims})")
    if "split" in ds.coords and ds["split"].dims == ("stimulus",):
        split = np.array([str(v) for v in np.asarray(ds["split"].values).tolist()], dtype=object)
        allowed = _SPLITS[kind]
        bad = sorted(set(split.tolist()) - allowed)
        if bad:
            problems.append(
                f"coordinate `split` holds {bad}; allowed values for a {kind} are {sorted(allowed)}"
            )
        elif kind in ("simulation", "theory"):
            is_test = split == "test"
            if np.any(np.diff(is_test.astype(int)) < 0):
                problems.append("stimuli must be ordered train first, then test (see `split`)")
    if "target" in ds.coords and ds["target"].dims == ("stimulus",):
        if np.asarray(ds["target"].values).dtype.kind not in "iuf":
            problems.append(f"coordinate `target` must be numeric (got {ds['target'].dtype})")


def _check_variable_dims(
    ds: xr.Dataset, name: str, dims: tuple[str, ...], problems: list[str]
) -> None:
    if ds[name].dims != dims:
        problems.append(f"variable `{name}` must have dims {dims} (got {ds[name].dims})")


def _check_activity_order(ds: xr.Dataset, problems: list[str]) -> None:
    dims = ds["activity"].dims
    unknown = [d for d in dims if d not in _ACTIVITY_ORDER]
    if unknown:
        problems.append(f"variable `activity` has unknown dims {unknown}")
        return
    missing = [d for d in ("time", "unit", "stimulus") if d not in dims]
    if missing:
        problems.append(f"variable `activity` lacks dims {missing} (got {dims})")
        return
    order = [_ACTIVITY_ORDER.index(d) for d in dims]
    if order != sorted(order):
        expected = tuple(d for d in _ACTIVITY_ORDER if d in dims)
        problems.append(f"variable `activity` must have dims in the order {expected} (got {dims})")


def _check_values(ds: xr.Dataset, kind: str, problems: list[str]) -> None:
    for name in ("activity", "output", "readout", "loss", "output_mean"):
        if name not in ds.data_vars:
            continue
        values = np.asarray(ds[name].values)
        if values.dtype.kind not in "iuf":
            problems.append(f"variable `{name}` must be numeric (got dtype {values.dtype})")
            continue
        if np.any(np.isinf(values)):
            problems.append(f"variable `{name}` holds inf")
        if (kind != "recording" or name != "activity") and np.any(np.isnan(values)):
            n = int(np.isnan(values).sum())
            problems.append(f"variable `{name}` holds {n} NaN values")
        if name == "loss" and np.any(values < 0):
            problems.append("variable `loss` holds negative values")


def validate_dataset(
    ds: xr.Dataset, kind: str | None = None, *, check_values: bool = True
) -> None:
    """Check ``ds`` against the ndk-drift data format.

    Parameters
    ----------
    ds : xarray.Dataset
    kind : {"simulation", "theory", "recording"}, optional
        The kind the caller expects; by default the dataset's own ``kind`` attribute.
        Simulations need ``activity (time, member, layer, unit, stimulus)``,
        ``output (time, member, stimulus)``, ``readout (time, member, unit)``,
        ``loss (time, member)``; recordings need ``activity`` with dims in the order
        ``(time, [member], [layer], unit, stimulus, [trial])`` and may hold NaN there;
        theory datasets need ``output_mean (time, stimulus)``.
    check_values : bool
        Also load the values and check them (finite; NaN only in a recording's
        ``activity``; loss >= 0). Switch off for large lazily opened stores.

    Raises
    ------
    ValueError
        Listing every violation found.
    """
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"expected an xarray.Dataset (got {type(ds).__name__})")
    problems: list[str] = []
    attrs = ds.attrs
    if attrs.get("format") != FORMAT_NAME:
        problems.append(f"attribute `format` must be {FORMAT_NAME!r} (got {attrs.get('format')!r})")
    version = attrs.get("format_version")
    if not (isinstance(version, (int, np.integer)) and int(version) == FORMAT_VERSION):
        problems.append(
            f"attribute `format_version` must be {FORMAT_VERSION} (got {version!r})"
        )
    own_kind = attrs.get("kind")
    if own_kind not in KINDS:
        problems.append(f"attribute `kind` must be one of {list(KINDS)} (got {own_kind!r})")
    if kind is not None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)} (got {kind!r})")
        if own_kind in KINDS and own_kind != kind:
            problems.append(f"attribute `kind` is {own_kind!r}, expected {kind!r}")
    kind = kind or (own_kind if own_kind in KINDS else "recording")
    if "time_units" not in attrs:
        problems.append("attribute `time_units` is missing")
    if kind in ("simulation", "theory"):
        for name in ("config", "package_version"):
            if name not in attrs:
                problems.append(f"attribute `{name}` is missing")
    if kind == "simulation" and "seed" not in attrs:
        problems.append("attribute `seed` is missing")

    _check_time(ds, kind, problems)
    _check_stimulus(ds, kind, problems)
    for name in ("unit", "member", "trial"):
        _check_index(ds, name, problems)
    _check_index(ds, "layer", problems, start=1)

    if kind == "simulation":
        for name, dims in MODEL_VARIABLES.items():
            if name not in ds.data_vars:
                problems.append(f"variable `{name}` is missing")
            else:
                _check_variable_dims(ds, name, dims, problems)
    elif kind == "recording":
        if "activity" not in ds.data_vars:
            problems.append("variable `activity` is missing")
        else:
            _check_activity_order(ds, problems)
        for name in ("output", "readout", "loss"):
            if name in ds.data_vars:
                _check_variable_dims(ds, name, MODEL_VARIABLES[name], problems)
    else:
        if "output_mean" not in ds.data_vars:
            problems.append("variable `output_mean` is missing")
        for name, dims in _THEORY_VARIABLES.items():
            if name in ds.data_vars:
                _check_variable_dims(ds, name, dims, problems)

    for name, var in ds.data_vars.items():
        for attr in ("units", "long_name"):
            if attr not in var.attrs:
                problems.append(f"variable `{name}` lacks a `{attr}` attribute")

    if check_values and not problems:
        _check_values(ds, kind, problems)
    if problems:
        raise ValueError(
            f"invalid {FORMAT_NAME} dataset (kind {kind!r}):\n  - " + "\n  - ".join(problems)
        )
