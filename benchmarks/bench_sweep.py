"""Overhead and speed-up of the sweep engine against a plain loop of the same runs.

Eight small runs (a 2 x 4 grid over ``dynamics.temperature`` and ``ensemble.seed``,
each taking about 7 seconds on one core) are done three ways, each writing its own
``.zarr`` stores:

* a plain loop in this process (``drift.simulate.simulate(config, out=...)``, one torch
  thread), and with ``--repeat-loop`` once more after the sweeps to bracket changes in
  machine load;
* ``drift.sweep.sweep`` on an embedded local cluster with 1 worker: its wall time minus
  the loop's is the engine overhead (cluster start and stop, worker imports,
  scheduling, manifest), reported as a fraction of the loop time;
* the same sweep with one worker per core: the speed-up over the loop.

Every run uses one torch thread, and the sweeps' results are checked to be identical
to the loop's. Run ``python benchmarks/bench_sweep.py`` (about 3 minutes on 2 idle
cores); ``--markdown docs/benchmarks.md`` replaces the "Sweeps" section of that file
with the results.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

from drift.simulate import simulate
from drift.sweep import load_sweep_spec, open_sweep, sweep
from drift.sweep.cluster import cpu_count


def make_spec(duration: float, width: int, members: int) -> dict:
    base = {
        "network": {"depth": 2, "width": width, "activation": "relu"},
        "dynamics": {"temperature": 0.01, "prior_variance": 1.0, "init_variance": 0.25,
                     "dt": 0.02, "duration": duration},
        "data": {"n_train": 40, "n_test": 10, "input_dim": 32},
        "record": {"n_times": 30, "units": 32},
        "ensemble": {"members": members, "seed": 0},
        "device": "cpu",
        "dtype": "float32",
    }
    return {"base": base, "parameters": {"dynamics.temperature": [0.01, 0.05],
                                         "ensemble.seed": [0, 1, 2, 3]}}


def run_loop(spec: dict, out: Path) -> tuple[float, np.ndarray]:
    """Every run of ``spec`` in this process, one after the other.

    Returns the wall time and, per run, (wall, CPU) seconds.
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    each = []
    t0 = time.perf_counter()
    for task in load_sweep_spec(spec).tasks:
        t1, c1 = time.perf_counter(), time.process_time()
        simulate(task.config, out=out / task.name, progress=False)
        each.append((time.perf_counter() - t1, time.process_time() - c1))
    return time.perf_counter() - t0, np.asarray(each)


def run_sweep(spec: dict, out: Path, workers: int) -> tuple[float, np.ndarray]:
    """The sweep on an embedded cluster; wall time and, per run, (wall, CPU) seconds."""
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    summary = sweep(spec, out, n_workers=workers, threads_per_run=1, progress=False)
    wall = time.perf_counter() - t0
    if not summary.ok:
        raise RuntimeError(f"the sweep failed:\n{summary}")
    return wall, np.asarray([(t["elapsed_s"], t["cpu_s"]) for t in summary.tasks])


def _import_package() -> float:
    t0 = time.perf_counter()
    import drift.simulate  # noqa: F401

    return time.perf_counter() - t0


def fixed_costs() -> tuple[float, float, float]:
    """Seconds to start a 1-worker embedded cluster, import the package in its fresh
    worker process, and stop the cluster."""
    from distributed import Client

    from drift.sweep.cluster import LocalPlan, _local_cluster

    t0 = time.perf_counter()
    cluster = _local_cluster(LocalPlan(1, 1, ()), {})
    start = time.perf_counter() - t0
    with Client(cluster) as client:
        imported = client.submit(_import_package, pure=False).result()
    t0 = time.perf_counter()
    cluster.close()
    return start, imported, time.perf_counter() - t0


def same_results(spec: dict, loop_dir: Path, sweep_dir: Path) -> bool:
    from drift.io import open_run

    ds = open_sweep(sweep_dir)
    for task in load_sweep_spec(spec).tasks:
        v = task.values
        a = ds.sel(temperature=v["dynamics.temperature"], seed=v["ensemble.seed"])
        b = open_run(loop_dir / task.name)
        for name in ("activity", "output", "readout", "loss"):
            if not np.array_equal(a[name].values, b[name].values, equal_nan=True):
                return False
    return True


def markdown(rows: list[tuple[str, str]], args, info: dict) -> str:
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"""## Sweeps

`python benchmarks/bench_sweep.py` on {info['machine']}, {info['cores']} cores
(torch {torch.__version__}, dask {info['dask']}); one torch thread per run everywhere.

Runs: {info['n_runs']} runs (2 temperatures x 4 seeds) of {args.members} members x width
{args.width} x depth 2, 40 + 10 stimuli, {info['steps']} steps of dt = 0.02, 31 snapshots,
each streamed to its own `.zarr` store. 1-minute load average {info['load_before']:.1f}
before and {info['load_after']:.1f} after the benchmark ({info['cores']} cores).

| quantity | value |
|---|---|
{table}

Notes. The engine overhead is the wall time of the one-worker sweep minus that of the
plain loop, over the loop time; the time outside the runs (the sweep's wall time minus
the wall time of its runs, as each worker measured them) splits it from any slowdown of
the runs themselves. It covers starting and stopping the local cluster, importing torch
and the package in the worker process, scheduling and the manifest: a fixed cost of a
few seconds per sweep, so its fraction falls as runs grow. The speed-up is the loop time
over the wall time of the sweep with one worker per core. Per-run wall and CPU seconds
show the share of a core each run got: below 100% the cores were also busy with other
work. Results of both sweeps are identical to the loop's, bit for bit.

{info['note']}
"""


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Sweeps\n.*?(?=^## |\Z)", flags=re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=50.0, help="simulated time per run")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--members", type=int, default=16)
    p.add_argument("--workers", type=int, default=cpu_count(), help="workers of the fast sweep")
    p.add_argument("--repeat-loop", action="store_true",
                   help="time the loop again after the sweeps (brackets load changes)")
    p.add_argument("--markdown", type=Path, default=None,
                   help="replace the 'Sweeps' section of this Markdown file")
    p.add_argument("--note", default="", help="sentence added to the Markdown section")
    args = p.parse_args()

    torch.set_num_threads(1)
    spec = make_spec(args.duration, args.width, args.members)
    n_runs = len(load_sweep_spec(spec).tasks)
    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        loops = []
        loop_time, each = run_loop(spec, root / "loop")
        loops.append(loop_time)
        print(f"loop: {loop_time:.1f} s", flush=True)
        one, one_each = run_sweep(spec, root / "one", 1)
        print(f"sweep, 1 worker: {one:.1f} s", flush=True)
        many, many_each = run_sweep(spec, root / "many", args.workers)
        print(f"sweep, {args.workers} workers: {many:.1f} s", flush=True)
        start, imported, close = fixed_costs()
        if args.repeat_loop:
            loops.append(run_loop(spec, root / "loop")[0])
            print(f"loop again: {loops[-1]:.1f} s", flush=True)
        identical = same_results(spec, root / "loop", root / "one") and same_results(
            spec, root / "loop", root / "many")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load_after = os.getloadavg()[0]
    loop = float(np.mean(loops))

    def per_run(a: np.ndarray) -> str:
        wall, cpu = a.mean(axis=0)
        return f"{wall:.2f} s / {cpu:.2f} s ({100 * cpu / wall:.0f}% of a core)"

    outside = one - one_each[:, 0].sum()
    rows = [
        ("plain loop in one process" + (" (mean of before and after)" if len(loops) > 1
                                        else ""),
         " / ".join(f"{t:.1f} s" for t in loops)),
        ("per run in the loop: wall / CPU", per_run(each)),
        ("sweep, 1 worker (wall, cluster start to stop)", f"{one:.1f} s"),
        ("per run inside the worker: wall / CPU", per_run(one_each)),
        ("engine overhead, (1-worker sweep - loop) / loop (target < 10%)",
         f"{one - loop:.1f} s = {100 * (one - loop) / loop:.1f}%"),
        ("time outside the runs in the 1-worker sweep, and / loop",
         f"{outside:.1f} s = {100 * outside / loop:.1f}%"),
        ("of which: cluster start, with the worker process importing torch and the "
         "package / cluster stop (timed separately)", f"{start + imported:.1f} s / "
         f"{close:.1f} s"),
        (f"sweep, {args.workers} workers (wall)", f"{many:.1f} s"),
        (f"per run inside the {args.workers} workers: wall / CPU", per_run(many_each)),
        (f"speed-up over the loop with {args.workers} workers (ideal {args.workers})",
         f"{loop / many:.2f}x"),
        ("results identical to the loop's", "yes" if identical else "NO"),
    ]
    runs_many = many_each[:, 0].sum() / args.workers
    outside_many = many - runs_many
    rows.insert(-2, (f"time outside the runs in the {args.workers}-worker sweep",
                     f"{outside_many:.1f} s"))
    slower = 100 * (many_each[:, 0].mean() / each[:, 0].mean() - 1)
    longer = loop * 10 / (runs_many * 10 + outside_many)
    analysis = (
        f"Speed-up {loop / many:.2f}x of the ideal {args.workers}x: each run took "
        f"{slower:.0f}% longer with {args.workers} workers busy than alone in the loop, and "
        f"the fixed {outside_many:.1f} s outside the runs is not shared out; runs ten times "
        f"longer would give about {longer:.2f}x (extrapolated from these parts)."
    )
    import dask

    info = {
        "machine": platform.machine(), "cores": cpu_count(), "dask": dask.__version__,
        "n_runs": n_runs, "steps": int(round(args.duration / 0.02)),
        "load_before": load_before, "load_after": load_after,
        "note": textwrap.fill(analysis + (f" {args.note}" if args.note else ""), 88),
    }
    section = markdown(rows, args, info)
    print(section)
    if args.markdown is not None:
        write_section(args.markdown, section)
        print(f"wrote the 'Sweeps' section of {args.markdown}")


if __name__ == "__main__":
    main()
