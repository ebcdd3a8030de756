"""Benchmark of the NDK mean predictor (a script, not a test).

Problem: 200 train and 200 test MNIST images (4 vs 9), depth 2, ReLU, T = 0.01,
sigma2 = 1, sigma02 = 0.5, 200 log-spaced requested times up to 10 / lambda.
Target on a 2-core machine: under 60 s with a reported error under 1e-3.

Reported in the same run:

* wall time of ``mean_predictor`` (both grids, train and test) and its error estimate;
* a brute-force baseline that runs the layer recursion for every pair of grid times
  (timed on a sample of pairs and extrapolated to the ``n^2 / 2`` pairs it would need);
* the floating-point work of the solver's matrix products against the rate of a large
  ``np.matmul`` measured here (the fraction of the machine's GEMM limit reached).

Run: ``python benchmarks/bench_theory.py``.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from drift.config import load_config
from drift.datasets import load_dataset
from drift.theory import kernel_stack, mean_predictor
from drift.theory.prior import prior_correlation
from drift.theory.solver import NDKProblem, fastest_rate, time_grid


def matmul_rate(n: int = 2048, repeats: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((n, n))
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def main() -> None:
    cfg = load_config({"data": {"name": "mnist", "task": "4 vs 9", "n_train": 200,
                                "n_test": 200}})
    data = load_dataset(cfg.data)
    temperature, s2, s02 = 0.01, 1.0, 0.5
    lam = temperature / s2
    times = np.geomspace(1e-2, 10.0 / lam, 200)
    kw = dict(depth=2, activation="relu", temperature=temperature, prior_variance=s2,
              init_variance=s02)

    peak = matmul_rate()
    start = time.perf_counter()
    ds = mean_predictor(data.x_train, data.y_train, data.x_test, times, **kw)
    wall = time.perf_counter() - start

    # brute force: the layer recursion for each pair (t_i >= t_j) of the same grids
    problem = NDKProblem(data.x_train, data.y_train, 2, "relu", temperature, s2, s02)
    grid = time_grid(times[-1], fast_rate=fastest_rate(problem), lam=lam, include=times)
    n_pairs = len(grid) * (len(grid) + 1) // 2 + (2 * len(grid)) * (2 * len(grid) + 1) // 2
    rng = np.random.default_rng(0)
    sample = 20
    t0 = time.perf_counter()
    for _ in range(sample):
        i, j = sorted(rng.integers(0, len(grid), 2))[::-1]
        ti, tj = grid[i], grid[j]
        a, b, c = (prior_correlation(u, v, temperature=temperature, prior_variance=s2,
                                     init_variance=s02) for u, v in ((ti, ti), (tj, tj), (ti, tj)))
        x_all = np.concatenate([data.x_train, data.x_test])
        kernel_stack(x_all, data.x_train, a, b, c, depth=2, activation="relu")
    per_pair = (time.perf_counter() - t0) / sample
    brute = per_pair * n_pairs

    # matrix-product work of the solver (both grids): per step the history product
    # (M x i) @ (i x P), the table contraction P x (M P), the P x P solve, and the
    # test-point evaluation at the requested times
    p = data.x_train.shape[0]
    m_nodes = 33
    flops = 0.0
    for n in (ds.attrs["n_grid"] // 2 + 1, ds.attrs["n_grid"]):
        steps = np.arange(1, n)
        flops += np.sum(2.0 * m_nodes * steps * p + 2.0 * p * m_nodes * p + 2.0 / 3 * p**3)
    print(f"machine: {platform.machine()}, numpy {np.__version__}")
    print(f"requested times: {len(times)} up to {times[-1]:.0f} (10 / lambda)")
    print(f"internal grid (fine): {ds.attrs['n_grid']} points")
    print(f"mean_predictor wall time: {wall:.1f} s (target < 60 s)")
    print(f"reported error estimate: {ds.attrs['error_estimate']:.2e} (target < 1e-3)")
    print(f"kernel interpolation error: {ds.attrs['interpolation_error']:.1e}")
    print(f"brute force (recursion per pair, {n_pairs} pairs, {per_pair * 1e3:.1f} ms each): "
          f"{brute:.0f} s estimated -> speed-up {brute / wall:.0f}x")
    print(f"solver matrix work ~{flops / 1e9:.1f} GFLOP -> {flops / wall / 1e9:.2f} GFLOP/s "
          f"= {100 * flops / wall / peak:.1f}% of np.matmul ({peak / 1e9:.1f} GFLOP/s); "
          "the march is sequential in time and latency-bound on P = 200")


if __name__ == "__main__":
    main()
