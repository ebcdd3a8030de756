"""Where the tasks of a sweep run: an embedded local cluster or any Dask scheduler.

The default is an embedded cluster on this machine, one single-threaded worker process
per task slot:

* with CUDA and runs that use it (``device: auto`` or ``cuda``): one worker per visible
  GPU, each seeing only its GPU (``CUDA_VISIBLE_DEVICES``), so ``device: auto`` or
  ``cuda`` in a run means "this worker's GPU";
* otherwise ``min(tasks, cores)`` workers.

Each run then uses ``cores // workers`` torch threads, so that the workers together
never oversubscribe the cores. Any running Dask scheduler can be used instead (its
address, a ``distributed.Client`` or a cluster object such as dask-jobqueue's
``SLURMCluster``); docs/sweeps.md shows how.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LocalPlan", "connect", "cpu_count", "plan_local", "visible_gpus"]


def cpu_count() -> int:
    """Cores this process may use (its CPU affinity when the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def visible_gpus() -> list[str]:
    """Identifiers of the CUDA devices this process may use (``CUDA_VISIBLE_DEVICES`` order)."""
    import torch

    if not torch.cuda.is_available():
        return []
    n = torch.cuda.device_count()
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env:
        ids = [s.strip() for s in env.split(",") if s.strip()]
        return ids[:n]
    return [str(i) for i in range(n)]


@dataclass(frozen=True)
class LocalPlan:
    """Layout of the embedded cluster.

    Attributes
    ----------
    n_workers : int
        Worker processes (one task at a time each).
    torch_threads : int
        Torch threads per run.
    gpus : tuple of str
        GPU of each worker (``CUDA_VISIBLE_DEVICES`` value); empty for a CPU cluster.
    """

    n_workers: int
    torch_threads: int
    gpus: tuple[str, ...] = ()


def plan_local(
    n_tasks: int,
    n_workers: int | None = None,
    threads_per_run: int | None = None,
    use_gpu: bool = False,
) -> LocalPlan:
    """Choose workers and threads for the embedded cluster.

    Parameters
    ----------
    n_tasks : int
        Tasks to run (no more workers than tasks are started).
    n_workers : int, optional
        Worker count; default one per GPU (``use_gpu`` and CUDA present) or
        ``min(n_tasks, cores)``. With GPUs, workers are spread round-robin over them.
    threads_per_run : int, optional
        Torch threads per run; default ``max(1, cores // n_workers)``.
    use_gpu : bool
        Whether the runs use CUDA (``device: auto``/``cuda``) when it is present.
    """
    if n_workers is not None and n_workers < 1:
        raise ValueError(f"n_workers must be >= 1 (got {n_workers})")
    if threads_per_run is not None and threads_per_run < 1:
        raise ValueError(f"threads_per_run must be >= 1 (got {threads_per_run})")
    cores = cpu_count()
    gpus = visible_gpus() if use_gpu else []
    if n_workers is None:
        n_workers = len(gpus) if gpus else min(max(1, n_tasks), cores)
    threads = threads_per_run or max(1, cores // n_workers)
    assigned = tuple(gpus[i % len(gpus)] for i in range(n_workers)) if gpus else ()
    return LocalPlan(n_workers=n_workers, torch_threads=threads, gpus=assigned)


def _local_cluster(plan: LocalPlan, options: Mapping[str, Any]):
    """Start the embedded cluster of ``plan``; ``options`` go to the cluster class."""
    import dask

    opts = {"silence_logs": logging.ERROR, **options}
    if "dashboard_address" not in opts:
        # no dashboard; the scheduler's small HTTP server on any free port
        opts["dashboard_address"] = None
        opts["scheduler_kwargs"] = {"dashboard_address": ":0", **opts.get("scheduler_kwargs", {})}
    # each worker holds one task at a time: a worker that dies takes no queued task
    # with it, and an idle worker always gets the next task; tasks run for seconds to
    # hours, so the workers' statistical profiler (sampling every 10 ms) is off
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0,
                          "distributed.worker.profile.enabled": False}):
        return _gpu_cluster(plan, opts) if plan.gpus else _cpu_cluster(plan, opts)


def _cpu_cluster(plan: LocalPlan, opts: dict):
    from distributed import LocalCluster

    return LocalCluster(n_workers=plan.n_workers, threads_per_worker=1, processes=True, **opts)


def _gpu_cluster(plan: LocalPlan, opts: dict):
    """One worker process per GPU slot, each seeing only its device."""
    from distributed import Nanny, Scheduler, SpecCluster
    from distributed.system import MEMORY_LIMIT

    memory = opts.pop("memory_limit", int(MEMORY_LIMIT / plan.n_workers))
    env = dict(opts.pop("env", {}))
    workers = {
        f"gpu{gpu}-{i}": {
            "cls": Nanny,
            "options": {
                "nthreads": 1,
                "memory_limit": memory,
                "env": {**env, "CUDA_VISIBLE_DEVICES": gpu},
            },
        }
        for i, gpu in enumerate(plan.gpus)
    }
    address = opts.pop("dashboard_address")
    scheduler = {
        "cls": Scheduler,
        "options": {"dashboard": address is not None, "dashboard_address": address,
                    **opts.pop("scheduler_kwargs", {})},
    }
    return SpecCluster(workers=workers, scheduler=scheduler, **opts)


@contextlib.contextmanager
def connect(
    scheduler: Any = None,
    *,
    n_tasks: int = 1,
    n_workers: int | None = None,
    threads_per_run: int | None = None,
    use_gpu: bool = False,
    cluster_options: Mapping[str, Any] | None = None,
) -> Iterator[tuple[Any, int | None, str]]:
    """A Dask client for the sweep; closes what it started.

    Parameters
    ----------
    scheduler : None, str, distributed.Client or cluster
        None: start an embedded cluster (:func:`plan_local`). A string: the address of a
        running scheduler (``"tcp://host:8786"``). A client: used as is. A cluster object
        (anything with ``scheduler_address``, e.g. ``LocalCluster``, ``SLURMCluster``):
        a client is attached to it.
    n_tasks, n_workers, threads_per_run, use_gpu
        Layout of the embedded cluster (see :func:`plan_local`). With another scheduler
        ``n_workers`` asks a cluster object to scale to that many workers, and
        ``threads_per_run`` is applied by each task.
    cluster_options : mapping, optional
        Extra keyword arguments of the embedded cluster (e.g. ``memory_limit``,
        ``dashboard_address``).

    Yields
    ------
    (client, torch_threads, description)
        ``torch_threads`` is what every task sets (None: leave the workers' setting).
    """
    from distributed import Client

    if scheduler is None:
        plan = plan_local(n_tasks, n_workers, threads_per_run, use_gpu)
        cluster = _local_cluster(plan, cluster_options or {})
        where = (
            f"local cluster: {plan.n_workers} worker(s) on GPU(s) {', '.join(plan.gpus)}"
            if plan.gpus
            else f"local cluster: {plan.n_workers} worker process(es)"
        ) + f", {plan.torch_threads} torch thread(s) per run"
        try:
            with Client(cluster) as client:
                yield client, plan.torch_threads, where
        finally:
            cluster.close()
        return
    if cluster_options:
        raise ValueError("cluster_options apply to the embedded cluster only (scheduler=None)")
    if isinstance(scheduler, Client):
        yield scheduler, threads_per_run, f"scheduler {scheduler.scheduler.address}"
        return
    if isinstance(scheduler, str):
        with Client(scheduler) as client:
            yield client, threads_per_run, f"scheduler {scheduler}"
        return
    if hasattr(scheduler, "scheduler_address"):
        if n_workers is not None and hasattr(scheduler, "scale"):
            scheduler.scale(n_workers)
        where = f"{type(scheduler).__name__} {scheduler.scheduler_address}"
        with Client(scheduler) as client:
            yield client, threads_per_run, where
        return
    raise TypeError(
        "scheduler must be None, a scheduler address, a distributed.Client or a cluster "
        f"object (got {type(scheduler).__name__})"
    )
