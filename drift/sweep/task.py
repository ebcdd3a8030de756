"""One task of a sweep, as a worker runs it: start, resume or skip one run store.

:func:`run_task` never raises for a failed run: it returns a record with the error and
its traceback, so that one bad run is reported without stopping the others. A worker
that dies mid-run (killed, out of memory) leaves the store with every committed
snapshot and its last checkpoint; the next attempt resumes it
(``simulate(..., resume=True)``), which reproduces the uninterrupted run exactly.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dask
import yaml
import zarr

from drift.config import config_to_dict, load_config
from drift.io.runstore import checkpoint_path, is_store

__all__ = ["StoreState", "config_differences", "run_task", "store_state"]

#: ``on_snapshot(task_name, index, step, time)``: called on the worker after each
#: snapshot of a run is committed.
SnapshotHook = Callable[[str, int, int, float], None]


@dataclass(frozen=True)
class StoreState:
    """What a task's store holds.

    Attributes
    ----------
    state : str
        ``missing`` (no store), ``fresh`` (a store that holds no checkpoint or no
        configuration: created, then interrupted; started over), ``partial``
        (resumable), ``complete``, ``mismatch`` (a run of another configuration) or
        ``foreign`` (the path exists and is not a zarr store).
    n_written, n_times : int
        Snapshots committed and planned (0 when unknown).
    error : str
        The store's ``error`` attribute (why a run stopped early), or what differs.
    """

    state: str
    n_written: int = 0
    n_times: int = 0
    error: str = ""


def _flat(tree: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, Mapping) else {key: v})
    return out


def config_differences(a: Mapping, b: Mapping) -> list[str]:
    """Dotted keys whose values differ between two configurations (after validation)."""
    fa = _flat(config_to_dict(load_config(a)))
    fb = _flat(config_to_dict(load_config(b)))
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))


def store_state(path: str | Path, config: Mapping) -> StoreState:
    """Inspect the run store of a task without opening its data.

    Parameters
    ----------
    path : str or Path
        The task's ``.zarr`` store.
    config : mapping
        The task's configuration; a store of another configuration is a ``mismatch``.
    """
    p = Path(path)
    if not (p.exists() or p.is_symlink()):
        return StoreState("missing")
    if not is_store(p):
        return StoreState("foreign", error=f"{str(p)!r} exists and is not a zarr store")
    try:
        attrs = dict(zarr.open_group(str(p), mode="r").attrs)
    except Exception:  # unreadable metadata: the run never got going
        return StoreState("fresh")
    if "config" not in attrs:
        return StoreState("fresh")
    n_written, n_times = int(attrs.get("n_written", 0)), int(attrs.get("n_times", 0))
    try:
        diff = config_differences(yaml.safe_load(attrs["config"]), config)
    except (ValueError, yaml.YAMLError) as exc:
        return StoreState("mismatch", n_written, n_times, f"its configuration is unreadable "
                          f"({str(exc).splitlines()[0]})")
    if diff:
        return StoreState("mismatch", n_written, n_times, f"differs in {', '.join(diff)}")
    if int(attrs.get("complete", 0)) == 1:
        return StoreState("complete", n_written, n_times)
    if not checkpoint_path(p).is_file():
        return StoreState("fresh", n_written, n_times)
    return StoreState("partial", n_written, n_times, str(attrs.get("error", "")))


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def run_task(payload: Mapping) -> dict:
    """Run, resume or skip one task (the function a sweep submits to the workers).

    Parameters
    ----------
    payload : mapping
        ``name`` (task name), ``store`` (absolute path of its ``.zarr`` store),
        ``config`` (full configuration dict), ``checkpoint_interval`` (seconds, as in
        :func:`drift.simulate.simulate`), ``torch_threads`` (int or None: leave the
        worker's setting) and ``on_snapshot`` (a :data:`SnapshotHook` or None).

    Returns
    -------
    dict
        ``name``; ``status`` (``complete`` or ``failed``); ``action`` (``ran``: started
        from scratch, ``resumed``: continued a partial store, ``skipped``: already
        complete); ``error`` and ``traceback`` (empty unless failed); ``warnings``
        (messages raised during the run); ``n_written``, ``n_times``; ``elapsed_s``
        (wall-clock seconds) and ``cpu_s`` (CPU seconds of the worker process);
        ``worker``.
    """
    from drift.simulate import simulate

    name = str(payload["name"])
    store = Path(payload["store"])
    config = dict(payload["config"])
    hook: SnapshotHook | None = payload.get("on_snapshot")
    t0, cpu0 = time.perf_counter(), time.process_time()
    record = {
        "name": name, "status": "failed", "action": "", "error": "", "traceback": "",
        "warnings": [], "n_written": 0, "n_times": 0, "elapsed_s": 0.0,
        "worker": _worker_name(),
    }
    # reads inside a run (opening stores) stay in this process, never on other workers
    with warnings.catch_warnings(record=True) as caught, dask.config.set(scheduler="sync"):
        warnings.simplefilter("always")
        try:
            threads = payload.get("torch_threads")
            if threads:
                import torch

                torch.set_num_threads(int(threads))
            state = store_state(store, config)
            if state.state == "foreign":
                raise FileExistsError(f"{state.error}; remove it or choose another sweep directory")
            if state.state == "mismatch":
                raise ValueError(
                    f"{str(store)!r} holds a run of another configuration ({state.error}); "
                    "re-run the sweep with overwrite=True to replace it, or use another "
                    "sweep directory"
                )

            def on_snapshot(k: int, step: int, t: float) -> None:
                if hook is not None:
                    hook(name, k, step, t)

            options = {
                "progress": False,
                "checkpoint_interval": float(payload.get("checkpoint_interval", 120.0)),
                "on_snapshot": on_snapshot,
            }
            if state.state == "complete":
                record["action"] = "skipped"
            elif state.state == "partial":
                record["action"] = "resumed"
                simulate(config, out=store, resume=True, **options)
            else:
                record["action"] = "ran"
                simulate(config, out=store, overwrite=True, **options)
            record["status"] = "complete"
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc()
    record["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    final = store_state(store, config)
    record.update(n_written=final.n_written, n_times=final.n_times)
    record["elapsed_s"] = round(time.perf_counter() - t0, 3)
    record["cpu_s"] = round(time.process_time() - cpu0, 3)
    return record
