"""Run a sweep: one task per combination, on Dask workers, resumable and fault tolerant."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drift.io.runstore import remove_store
from drift.sweep.cluster import connect
from drift.sweep.manifest import MANIFEST_NAME, new_manifest, now, read_manifest, write_manifest
from drift.sweep.spec import SweepSpec, SweepTask, load_sweep_spec
from drift.sweep.task import SnapshotHook, run_task, store_state

__all__ = ["SweepSummary", "sweep", "sweep_command"]

_MANIFEST_EVERY = 1.0  # seconds between manifest writes while results arrive
_WORKER_DIED = (
    "the worker running this task died (killed, out of memory or crashed); its store "
    "keeps every committed snapshot and the next sweep resumes it"
)


@dataclass
class SweepSummary:
    """What a call of :func:`sweep` did.

    Attributes
    ----------
    out_dir : Path
        The sweep directory.
    mode : str
        ``grid`` or ``zip``.
    tasks : list of dict
        The manifest entry of every task (see :mod:`drift.sweep.manifest`), plus
        ``action`` for the tasks handled by this call (``ran``, ``resumed``,
        ``skipped``).
    elapsed_s : float
        Wall-clock seconds of the call.
    where : str
        Where the tasks ran.
    """

    out_dir: Path
    mode: str
    tasks: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0
    where: str = ""

    def _count(self, status: str) -> int:
        return sum(t["status"] == status for t in self.tasks)

    @property
    def n_complete(self) -> int:
        """Tasks whose run is complete."""
        return self._count("complete")

    @property
    def n_failed(self) -> int:
        """Tasks whose last attempt failed."""
        return self._count("failed")

    @property
    def ok(self) -> bool:
        """Whether every run is complete."""
        return self.n_complete == len(self.tasks)

    @property
    def failed(self) -> list[dict]:
        """Entries of the failed tasks: ``name``, ``values``, ``config``, ``error``,
        ``traceback``."""
        return [t for t in self.tasks if t["status"] == "failed"]

    def __str__(self) -> str:
        skipped = sum(t.get("action") == "skipped" for t in self.tasks)
        lines = [
            f"sweep {str(self.out_dir)!r}: {len(self.tasks)} task(s), {self.n_complete} "
            f"complete ({skipped} already before), {self.n_failed} failed, "
            f"{len(self.tasks) - self.n_complete - self.n_failed} not finished "
            f"[{self.elapsed_s:.1f} s]"
        ]
        for t in self.failed:
            values = ", ".join(f"{k}={v!r}" for k, v in t["values"].items())
            first = (t.get("error") or "").splitlines()[:1]
            lines.append(f"  FAILED {t['name']} ({values}): {first[0] if first else ''}")
        return "\n".join(lines)


def _uses_gpu(tasks: list[SweepTask]) -> bool:
    return any(str(t.config.get("device", "auto")) != "cpu" for t in tasks)


def _entry_from_store(entry: dict, task: SweepTask, store: Path) -> str:
    """Set ``entry``'s status from the store on disk; returns the store's state."""
    state = store_state(store, task.config)
    entry["n_written"], entry["n_times"] = state.n_written, state.n_times
    if state.state == "complete":
        entry["status"] = "complete"
    elif state.state in ("partial", "fresh"):
        entry["status"] = "partial"
    elif state.state in ("mismatch", "foreign"):
        entry["status"] = "failed"
        entry["error"] = f"{str(store)!r}: {state.error}"
    return state.state


def _failure(entry: dict, task: SweepTask, error: str, tb: str) -> None:
    entry.update(status="failed", error=error, traceback=tb, config=task.config)


def sweep(
    spec: str | Path | Mapping | SweepSpec,
    out_dir: str | Path,
    *,
    scheduler: Any = None,
    n_workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    threads_per_run: int | None = None,
    checkpoint_interval: float = 120.0,
    resources: Mapping[str, float] | None = None,
    cluster_options: Mapping[str, Any] | None = None,
    on_snapshot: SnapshotHook | None = None,
) -> SweepSummary:
    """Run every combination of a sweep spec, each into its own run store.

    Parameters
    ----------
    spec : str, Path, mapping or SweepSpec
        The sweep (see :func:`drift.sweep.load_sweep_spec` and docs/sweeps.md); validated
        in full before anything starts.
    out_dir : str or Path
        Sweep directory: one ``.zarr`` store per task (named from its swept values) and
        the manifest ``sweep.json``. It must be reachable by every worker under the same
        path (a shared file system on a cluster).
    scheduler : None, str, distributed.Client or cluster object
        None: an embedded local cluster (one worker per GPU when the runs use CUDA, else
        ``min(tasks, cores)`` single-threaded worker processes). A scheduler address
        (``"tcp://host:8786"``), a client or a cluster object (e.g. dask-jobqueue's
        ``SLURMCluster``) attaches to that instead.
    n_workers : int, optional
        Workers of the embedded cluster (a cluster object is scaled to it).
    progress : bool
        One progress bar over the tasks, with complete/failed counts, on stderr.
    overwrite : bool
        Start every run from scratch, deleting existing stores (default: complete runs
        are skipped and partial ones resumed).
    threads_per_run : int, optional
        Torch threads of each run; default ``cores // workers`` on the embedded cluster
        and the workers' own setting elsewhere.
    checkpoint_interval : float
        Seconds between checkpoints of each run (:func:`drift.simulate.simulate`); a
        killed worker loses at most this much computation, never committed snapshots.
    resources : mapping, optional
        Dask worker resources every task needs, e.g. ``{"GPU": 1}`` for workers started
        with ``--resources GPU=1``.
    cluster_options : mapping, optional
        Extra keyword arguments of the embedded cluster (``memory_limit``,
        ``dashboard_address``, ...).
    on_snapshot : callable, optional
        ``on_snapshot(task_name, index, step, time)``, called on the worker after each
        committed snapshot (it must be picklable); an exception raised there fails the
        task, keeping what was written.

    Returns
    -------
    SweepSummary
        Every task's status; failed tasks carry ``config``, ``error`` and ``traceback``.
        A failed task never stops the others; the manifest holds the same information.

    Raises
    ------
    SweepSpecError
        (a ``ValueError``) when the spec is invalid; nothing is run.

    Notes
    -----
    Re-running a sweep skips complete runs and resumes partial ones (interrupted, or
    whose worker died) from their last checkpoint; the result is identical to an
    uninterrupted sweep. A store holding a run of another configuration (the base
    changed) is reported as failed unless ``overwrite``. Only one process should drive
    a given sweep directory at a time.
    """
    t_start = time.perf_counter()
    sp = load_sweep_spec(spec)
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    try:
        previous = read_manifest(out)
    except FileNotFoundError:
        previous = None
    manifest = new_manifest(sp, previous)
    entries = manifest["tasks"]
    todo: list[tuple[SweepTask, dict]] = []
    for task, entry in zip(sp.tasks, entries, strict=True):
        store = out / task.name
        if overwrite:
            remove_store(store)
        state = _entry_from_store(entry, task, store)
        if state == "complete":
            entry["action"] = "skipped"
        elif state not in ("mismatch", "foreign"):
            todo.append((task, entry))
        else:
            entry["config"] = task.config
    write_manifest(out, manifest)
    summary = SweepSummary(out_dir=out, mode=sp.mode, tasks=entries)
    if not todo:
        summary.elapsed_s = time.perf_counter() - t_start
        _announce(f"sweep: nothing to run in {str(out)!r}\n{summary}", progress)
        return summary

    from tqdm.auto import tqdm

    with connect(
        scheduler,
        n_tasks=len(todo),
        n_workers=n_workers,
        threads_per_run=threads_per_run,
        use_gpu=_uses_gpu([t for t, _ in todo]),
        cluster_options=cluster_options,
    ) as (client, torch_threads, where):
        summary.where = where
        _announce(
            f"sweep: {len(sp.tasks)} task(s) ({sp.mode} over "
            f"{', '.join(p.key for p in sp.parameters)}), {len(sp.tasks) - len(todo)} "
            f"already complete, {len(todo)} to run on {where}; writing to {str(out)!r}",
            progress,
        )
        bar = tqdm(
            total=len(sp.tasks), initial=len(sp.tasks) - len(todo), unit="run", desc="sweep",
            disable=not progress, file=sys.stderr, dynamic_ncols=True,
        )
        _run_all(client, todo, out, sp, manifest, bar, {
            "checkpoint_interval": float(checkpoint_interval),
            "torch_threads": torch_threads,
            "on_snapshot": on_snapshot,
        }, resources)
    summary.elapsed_s = time.perf_counter() - t_start
    _announce(str(summary), progress)
    return summary


def _run_all(client, todo, out: Path, sp: SweepSpec, manifest: dict, bar,
             options: dict, resources: Mapping[str, float] | None) -> None:
    """Submit every task, collect results as they come, keep the manifest current."""
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]
    futures = {}
    for task, entry in todo:
        payload = {"name": task.name, "store": str(out / task.name), "config": task.config,
                   **options}
        fut = client.submit(
            run_task, payload, key=f"drift-sweep-{run_id}-{task.index}-{task.name}",
            pure=False, resources=dict(resources) if resources else None,
        )
        futures[fut] = (task, entry)
        entry.update(status="running", attempts=int(entry.get("attempts", 0)) + 1)
        for k in ("error", "traceback", "config"):
            entry.pop(k, None)
    write_manifest(out, manifest)

    def postfix() -> None:
        bar.set_postfix(
            complete=sum(t["status"] == "complete" for t in manifest["tasks"]),
            failed=sum(t["status"] == "failed" for t in manifest["tasks"]),
            refresh=False,
        )

    postfix()
    last_write = time.monotonic()
    try:
        for fut in as_completed(list(futures)):
            task, entry = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # the task never returned: worker died, cancelled, ...
                import traceback as tb

                from distributed.scheduler import KilledWorker

                error = _WORKER_DIED if isinstance(exc, KilledWorker) else (
                    f"{type(exc).__name__}: {exc}"
                )
                _entry_from_store(entry, task, out / task.name)
                _failure(entry, task, error, "".join(tb.format_exception(exc)))
            else:
                entry.update({k: v for k, v in result.items() if k not in ("name", "status")})
                if result["status"] == "complete":
                    entry["status"] = "complete"
                else:
                    _failure(entry, task, result["error"], result["traceback"])
            if not entry.get("warnings"):
                entry.pop("warnings", None)
            entry["finished"] = now()
            fut.release()
            bar.update(1)
            postfix()
            if time.monotonic() - last_write >= _MANIFEST_EVERY:
                write_manifest(out, manifest)
                last_write = time.monotonic()
    except BaseException:
        # interrupted: statuses from what the stores hold now
        for fut, (task, entry) in futures.items():
            if not fut.done():
                fut.cancel()
                entry.pop("action", None)
                _entry_from_store(entry, task, out / task.name)
                if entry["status"] == "running":
                    entry["status"] = "pending"
        raise
    finally:
        bar.close()
        write_manifest(out, manifest)


def _announce(message: str, progress: bool) -> None:
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)


def sweep_command(
    spec: str | Path,
    out: str | Path,
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> SweepSummary:
    """Entry point of ``drift sweep SWEEP.yaml --out DIR [--scheduler ADDRESS] [--workers N]``.

    Runs :func:`sweep` and prints its summary (failed tasks with their first error line;
    the manifest ``DIR/sweep.json`` holds their configuration and traceback).

    Parameters
    ----------
    spec : str or Path
        The sweep spec YAML.
    out : str or Path
        The sweep directory.
    scheduler : str, optional
        Address of a running Dask scheduler; default an embedded local cluster.
    workers : int, optional
        Workers of the embedded cluster.
    overwrite, progress : bool
        As in :func:`sweep`.

    Returns
    -------
    SweepSummary
        ``summary.ok`` is False when a task failed (the command should then exit with a
        non-zero status).
    """
    summary = sweep(spec, out, scheduler=scheduler, n_workers=workers, overwrite=overwrite,
                    progress=progress)
    if not progress:
        print(summary)
    if summary.ok:
        print(f"all runs complete; open them with drift.sweep.open_sweep({str(out)!r})")
    else:
        print(
            f"{summary.n_failed} task(s) failed, "
            f"{len(summary.tasks) - summary.n_complete - summary.n_failed} not finished; "
            f"configurations and tracebacks in {str(summary.out_dir / MANIFEST_NAME)!r}; "
            "run the same command again to retry them"
        )
    return summary
