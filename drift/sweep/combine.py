"""Open a finished sweep as one lazy xarray.Dataset.

Each run store is opened lazily with :func:`drift.io.open_run` and the runs are combined
without reading their data (:func:`xarray.combine_nested` / :func:`xarray.concat`): the
result is dask-backed, one chunk per run and snapshot, so analyses stream through it.

* grid mode: one dimension per swept parameter, with the swept values as coordinates
  (e.g. ``activity (T, width, seed, time, member, layer, unit, stimulus)``);
* zip mode: one ``run`` dimension, with a coordinate per swept parameter on it.

Coordinates ``store`` (the run's store name) and ``complete`` (whether the run
finished) lie on the sweep dimensions. Non-index coordinates that differ between runs
(``target`` when the data seed is swept, ``step`` when ``dt`` is) gain the sweep
dimensions. Runs whose time (or unit, stimulus) axes differ are aligned on the union of
the axes, with NaN where a run has no value, and a :class:`SweepAxesWarning` is issued.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import yaml
import zarr

from drift.io.runstore import PartialRunWarning, is_store, open_run
from drift.sweep.manifest import read_manifest
from drift.sweep.task import config_differences

__all__ = ["SweepAxesWarning", "open_sweep"]

_COMBINE = {
    "data_vars": "all",
    "coords": "different",
    "compat": "equals",
    "join": "outer",
    "combine_attrs": "drop_conflicts",
}
_PER_RUN_ATTRS = ("n_written", "complete", "error")


class SweepAxesWarning(UserWarning):
    """The runs of a sweep have different time, unit or stimulus axes."""


def _coord(values: list) -> np.ndarray:
    """Coordinate array of swept values: numbers or strings as they are, else JSON text."""
    simple = all(isinstance(v, (bool, int, float, str)) for v in values)
    kinds = {isinstance(v, str) for v in values}
    if simple and len(kinds) == 1:
        return np.asarray(values)
    return np.asarray([json.dumps(v, sort_keys=True) for v in values], dtype=object)


def _open_task(path: Path, base: dict, values: dict) -> tuple[xr.Dataset | None, bool, str]:
    """(dataset or None, complete, problem) of one task's store."""
    if not is_store(path):
        return None, False, "no run store (never started)"
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    if "config" not in attrs:
        return None, False, "store holds no configuration (interrupted at creation)"
    try:
        diff = config_differences(yaml.safe_load(attrs["config"]), _task_config(base, values))
    except ValueError as exc:
        return None, False, f"unreadable configuration ({str(exc).splitlines()[0]})"
    if diff:
        return None, False, f"holds a run of another configuration (differs in {diff})"
    complete = int(attrs.get("complete", 0)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialRunWarning)
        ds = open_run(path)
    if complete:
        return ds, True, ""
    why = attrs.get("error") or "interrupted"
    return ds, False, f"partial: {ds.sizes['time']} of {attrs.get('n_times')} snapshots ({why})"


def _task_config(base: dict, values: dict) -> dict:
    from drift.config import config_to_dict, load_config

    return config_to_dict(load_config(base, overrides=values))


def _nested(items: list, shape: tuple[int, ...], positions: list[tuple]) -> list:
    grid = np.empty(shape, dtype=object)
    for item, pos in zip(items, positions, strict=True):
        grid[tuple(pos)] = item
    return grid.tolist()


def _check_axes(datasets: list[xr.Dataset]) -> None:
    ref = datasets[0]
    differ = [
        dim for dim in ("time", "unit", "stimulus", "member", "layer")
        if any(not ds.indexes[dim].equals(ref.indexes[dim]) for ds in datasets[1:])
    ]
    if differ:
        warnings.warn(
            f"the runs of this sweep have different {', '.join(differ)} axes (a swept key "
            "changes the snapshot schedule or the recorded shape); they are aligned on the "
            "union of the axes, with NaN where a run has no value",
            SweepAxesWarning,
            stacklevel=3,
        )


def open_sweep(out_dir: str | Path, *, allow_incomplete: bool = False) -> xr.Dataset:
    """Open every run of a sweep as one lazy, dask-backed dataset.

    Parameters
    ----------
    out_dir : str or Path
        A sweep directory written by :func:`drift.sweep.sweep`.
    allow_incomplete : bool
        Open a sweep with runs that are not complete: partial runs contribute their
        committed snapshots, missing or failed runs are all NaN; coordinate ``complete``
        says which runs finished. Default: raise.

    Returns
    -------
    xarray.Dataset
        The variables of docs/data_format.md (``activity``, ``output``, ``readout``,
        ``loss``) with the sweep dimensions in front: grid mode one dimension per swept
        parameter (coordinate = its values), zip mode a ``run`` dimension with one
        coordinate per parameter. Coordinates ``store`` and ``complete`` over the sweep
        dimensions; attributes shared by all runs, plus ``sweep_mode``,
        ``sweep_parameters`` (JSON: key, dim, values) and ``sweep_base`` (YAML of the base
        configuration). Nothing is read until computed.

    Raises
    ------
    FileNotFoundError
        ``out_dir`` holds no sweep manifest.
    ValueError
        A run is missing, failed, partial or of another configuration (listed with the
        reason) and ``allow_incomplete`` is False; or no run has data.
    """
    out = Path(out_dir)
    manifest = read_manifest(out)
    tasks, params, mode = manifest["tasks"], manifest["parameters"], manifest["mode"]
    opened, complete, problems = [], [], []
    for t in tasks:
        ds, done, problem = _open_task(out / t["name"], manifest["base"], t["values"])
        if problem and t.get("status") == "failed" and t.get("error"):
            problem += f"; last error: {t['error'].splitlines()[0]}"
        opened.append(ds)
        complete.append(done)
        if problem:
            problems.append(f"{t['name']}: {problem}")
    if problems and not allow_incomplete:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise ValueError(
            f"sweep {str(out)!r} is not finished: {len(problems)} of {len(tasks)} runs are "
            f"not complete:\n  {shown}{more}\nre-run the sweep to finish them, or pass "
            "allow_incomplete=True"
        )
    present = [ds for ds in opened if ds is not None]
    if not present:
        raise ValueError(f"sweep {str(out)!r} has no run with data yet")
    _check_axes(present)
    template = present[0]
    datasets = [
        ds if ds is not None else xr.full_like(template, np.nan).assign_attrs(template.attrs)
        for ds in opened
    ]
    dims = [p["dim"] for p in params]
    names = [t["name"] for t in tasks]
    if mode == "grid":
        shape = tuple(manifest["shape"])
        positions = [tuple(t["position"]) for t in tasks]
        combined = xr.combine_nested(_nested(datasets, shape, positions), concat_dim=dims,
                                     **_COMBINE)
        coords = {p["dim"]: _coord(p["values"]) for p in params}
        coords["store"] = (dims, np.asarray(_nested(names, shape, positions), dtype=object))
        coords["complete"] = (dims, np.asarray(_nested(complete, shape, positions), dtype=bool))
    else:
        combined = xr.concat(datasets, dim="run", **_COMBINE)
        coords = {p["dim"]: ("run", _coord(p["values"])) for p in params}
        coords.update(
            run=np.arange(len(tasks)),
            store=("run", np.asarray(names, dtype=object)),
            complete=("run", np.asarray(complete, dtype=bool)),
        )
    combined = combined.assign_coords(coords)
    sweep_dims = dims if mode == "grid" else ["run"]
    combined = combined.transpose(*sweep_dims, ...)
    for p in params:
        combined[p["dim"]].attrs.update(long_name=p["key"], sweep_key=p["key"])
    attrs = {k: v for k, v in combined.attrs.items() if k not in _PER_RUN_ATTRS}
    attrs.update(
        sweep_mode=mode,
        sweep_parameters=json.dumps(params),
        sweep_base=yaml.safe_dump(manifest["base"], sort_keys=False),
    )
    combined.attrs = attrs
    return combined
