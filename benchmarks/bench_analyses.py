"""Speed and memory of the core analyses on a recording-sized, dask-chunked dataset.

Default size: 50 sessions x 20,000 units x 500 stimuli, float32 (2 GB), generated chunk
by chunk with :mod:`dask.array` random (never materialised), with a stable tuning
component, session noise and a fraction of units untracked (NaN) per session. Measured:

* the PV-correlation matrix over all session pairs and the RSM of every session
  (``analyses.pv_correlation`` and ``analyses.rsm``), computed in one pass over the data;
* the data generation alone (the same graph reduced to a sum), for reference;
* a straightforward baseline: a double loop over session pairs with ``np.corrcoef`` per
  stimulus on the units tracked in both sessions (timed on a subset of pairs and
  extrapolated), and ``np.corrcoef`` per session for the RSMs;
* peak memory (``resource.getrusage`` max RSS of the process, and the RSS sampled with
  psutil during the analysis) and achieved GFLOP/s against a large ``np.matmul``.

Run ``python benchmarks/bench_analyses.py`` (1 to 2 minutes on 2 cores);
``--help`` lists the size options. Results are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import threading
import time

import dask
import dask.array as da
import numpy as np
import psutil
import xarray as xr
from threadpoolctl import threadpool_limits

import analyses


def make_data(t: int, u: int, s: int, tc: int, uc: int, missing: float, seed: int):
    """Lazy (time, unit, stimulus) float32 activity with NaN for untracked units."""
    rng = da.random.default_rng(seed)
    tuning = rng.standard_normal((u, s), chunks=(uc, s), dtype=np.float32)
    noise = rng.standard_normal((t, u, s), chunks=(tc, uc, s), dtype=np.float32)
    x = np.float32(0.8) * tuning[None] + np.float32(0.6) * noise
    untracked = rng.random((t, u), chunks=(tc, uc)) < missing
    x = da.where(untracked[..., None], np.float32(np.nan), x)
    return xr.DataArray(
        x,
        dims=("time", "unit", "stimulus"),
        coords={"time": np.arange(t, dtype=float)},
        name="activity",
    )


class RssSampler:
    """Peak resident memory of this process, sampled every ``dt`` seconds."""

    def __init__(self, dt: float = 0.02):
        self.dt, self.peak, self._stop = dt, 0, threading.Event()
        self._proc = psutil.Process(os.getpid())

    def __enter__(self):
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.dt)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def matmul_gflops(n: int = 4096, repeat: int = 3) -> float:
    """Best float32 GFLOP/s of an n x n x n matrix product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def load_sessions(arr: xr.DataArray, sessions: list[int]) -> dict[int, np.ndarray]:
    """The (unit, stimulus) arrays of ``sessions``, computed in one pass over the data."""
    vals = arr.isel(time=sessions).values
    return {i: vals[k] for k, i in enumerate(sessions)}


def baseline_pv(data: dict[int, np.ndarray], pairs: list[tuple[int, int]]) -> float:
    """Seconds for the PV correlation of ``pairs`` by a double loop with np.corrcoef."""
    t0 = time.perf_counter()
    for i, j in pairs:
        a, b = data[i], data[j]
        ok = ~np.isnan(a[:, 0]) & ~np.isnan(b[:, 0])
        r = np.empty(a.shape[1])
        for s in range(a.shape[1]):
            r[s] = np.corrcoef(a[ok, s], b[ok, s])[0, 1]
        r.mean()
    return time.perf_counter() - t0


def baseline_rsm(data: dict[int, np.ndarray], sessions: list[int]) -> float:
    """Seconds for the RSMs of ``sessions`` with np.corrcoef on the tracked units."""
    t0 = time.perf_counter()
    for i in sessions:
        x = data[i]
        ok = ~np.isnan(x[:, 0])
        np.corrcoef(x[ok].T)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--units", type=int, default=20000)
    p.add_argument("--stimuli", type=int, default=500)
    p.add_argument("--time-chunk", type=int, default=50)
    p.add_argument("--unit-chunk", type=int, default=1000)
    p.add_argument("--missing", type=float, default=0.05, help="fraction of untracked units")
    p.add_argument("--baseline-pairs", type=int, default=4)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    t, u, s = args.sessions, args.units, args.stimuli

    load_before = os.getloadavg()[0]
    gflops_peak = matmul_gflops()
    arr = make_data(t, u, s, args.time_chunk, args.unit_chunk, args.missing, seed=0)
    gb = t * u * s * 4 / 1e9

    # one dask worker per core, one BLAS thread per worker
    with dask.config.set(scheduler="threads", num_workers=args.workers), threadpool_limits(1):
        t0 = time.perf_counter()
        arr.sum().compute()
        t_gen = time.perf_counter() - t0

        pv = analyses.pv_correlation(arr)
        rs = analyses.rsm(arr)
        with RssSampler() as mem:
            t0 = time.perf_counter()
            pv_c, rs_c = dask.compute(pv, rs)
            t_ours = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    maxrss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    assert pv_c["correlation"].shape == (t, t) and rs_c["rsm"].shape == (t, s, s)

    # baseline on a subset of pairs / sessions (loaded first, not timed), extrapolated
    rng = np.random.default_rng(1)
    pairs = [tuple(sorted(rng.choice(t, 2, replace=False))) for _ in range(args.baseline_pairs)]
    n_pairs = t * (t + 1) // 2
    sess = list(range(min(3, t)))
    data = load_sessions(arr, sorted({i for p in pairs for i in p} | set(sess)))
    t_base_pv = baseline_pv(data, pairs) / len(pairs) * n_pairs
    t_base_rsm = baseline_rsm(data, sess) / len(sess) * t
    t_base = t_base_pv + t_base_rsm
    del data

    # matrix-product work done: PV (NaN pattern shared by stimuli: sxy per stimulus plus
    # two large mask products) and RSM (NaN pattern shared by the stimuli of a session)
    flops_pv = 6.0 * t * t * u * s
    flops_rsm = 2.0 * t * s * s * u
    flops = flops_pv + flops_rsm

    print("## Analyses")
    print()
    print(f"`python benchmarks/bench_analyses.py` on {platform.machine()}, {os.cpu_count()} cores")
    print(f"(numpy {np.__version__}, dask {dask.__version__}); one dask thread per core, one BLAS")
    print("thread per dask thread.")
    print()
    chunks = tuple(int(c) for c in arr.data.chunksize)
    print(f"Data: {t} sessions x {u} units x {s} stimuli, float32 ({gb:.2f} GB), dask chunks")
    print(f"{chunks} (time, unit, stimulus), {args.missing:.0%} units untracked")
    print("per session, generated chunk-wise (never materialised). 1-minute load average")
    print(f"{load_before:.1f} before and {load_after:.1f} after the run ({os.cpu_count()} cores).")
    print()
    t_an = t_ours - t_gen
    if t_an < 0.05 * t_ours:
        raise SystemExit("data too small: generation dominates; use the default sizes")
    rows = [
        (
            "PV-correlation matrix (all pairs) + RSM per session, incl. generation",
            f"{t_ours:.1f} s",
        ),
        ("data generation alone (same graph reduced to a sum)", f"{t_gen:.1f} s"),
        ("analyses alone (difference)", f"{t_an:.1f} s"),
        (
            f"baseline PV: double loop over session pairs, np.corrcoef per stimulus "
            f"({len(pairs)} of {n_pairs} pairs timed, extrapolated)",
            f"{t_base_pv:.0f} s",
        ),
        (
            f"baseline RSM: np.corrcoef per session ({len(sess)} of {t} timed, extrapolated)",
            f"{t_base_rsm:.1f} s",
        ),
        ("speed-up vs baseline, our generation included", f"{t_base / t_ours:.1f}x"),
        ("speed-up vs baseline, generation excluded", f"{t_base / t_an:.1f}x"),
        ("peak RSS during the analyses (psutil, sampled every 20 ms)", f"{mem.peak / 1e9:.2f} GB"),
        ("peak RSS of the whole process (getrusage maxrss)", f"{maxrss_gb:.2f} GB"),
        ("matrix-product work of the analyses", f"{flops / 1e12:.2f} TFLOP"),
        ("achieved, generation included", f"{flops / t_ours / 1e9:.1f} GFLOP/s"),
        ("achieved, generation excluded", f"{flops / t_an / 1e9:.1f} GFLOP/s"),
        ("np.matmul 4096^3 float32 in the same run", f"{gflops_peak:.1f} GFLOP/s"),
    ]
    print("| quantity | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
