"""Benchmark of one batched Langevin step against its unavoidable parts and a naive loop.

For two ensemble shapes, measured in one process on one device:

1. the batched step of :class:`drift.langevin.LangevinIntegrator` against the sum of
   its unavoidable parts, each timed alone: the GEMMs of the forward and backward pass
   (plain ``torch.mm`` / ``torch.bmm`` of the same shapes), drawing one Gaussian number
   per parameter (``normal_``) and one in-place update pass over the parameters
   (``theta.add_(noise)``). Target: ratio <= 1.3.
2. a straightforward per-member loop (one ``nn.Module`` per member, autograd, a manual
   Langevin update per parameter tensor). Target: speed-up >= 2 at shape B, >= 1 at A.
3. achieved GEMM throughput (GFLOP/s) and update-pass bandwidth (GB/s) as fractions of
   what torch reaches in the same run on one large square matmul and one large copy.

Usage::

    python benchmarks/bench_simulate.py [--device auto] [--threads N] [--markdown FILE]

With ``--markdown`` the results replace the section "Simulation step" of that file
(other sections are left alone). Runs unchanged on CUDA (timings synchronise).
"""

from __future__ import annotations

import argparse
import math
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from drift.langevin import LangevinIntegrator, ou_coefficients
from drift.network import EnsembleNetwork

SHAPES = {
    "A": {"members": 64, "width": 1024, "depth": 2, "stimuli": 100, "input_dim": 784},
    "B": {"members": 256, "width": 128, "depth": 2, "stimuli": 50, "input_dim": 64},
}
DT, TEMPERATURE, PRIOR_VARIANCE, INIT_VARIANCE = 0.01, 0.01, 1.0, 0.5
SECTION = "Simulation step"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------ unavoidable parts


def gemm_plan(m: int, n: int, n0: int, p: int, depth: int, dev, dtype):
    """The products of one forward + backward pass, in the layouts the step uses
    (activations stored stimulus-major, ``(M, P, N)``), as (function, flops) pairs on
    fresh tensors, each writing a preallocated output."""
    r = lambda *s: torch.randn(*s, device=dev, dtype=dtype)  # noqa: E731
    e = lambda *s: torch.empty(*s, device=dev, dtype=dtype)  # noqa: E731
    x, w1, w, a = r(p, n0).expand(m, p, n0), r(m, n, n0), r(m, n, n), r(m, 1, n)
    act_t, delta_t, res = r(m, p, n), r(m, p, n), r(m, 1, p)
    h_t, f, ga, gw, gw1 = e(m, p, n), e(m, 1, p), e(m, 1, n), e(m, n, n), e(m, n, n0)
    ops = [(lambda: torch.matmul(x, w1.transpose(1, 2), out=h_t), 2 * m * n * n0 * p)]
    for _ in range(depth - 1):
        ops.append((lambda: torch.bmm(act_t, w.transpose(1, 2), out=h_t), 2 * m * n * n * p))
    ops.append((lambda: torch.bmm(a, act_t.transpose(1, 2), out=f), 2 * m * n * p))
    ops.append((lambda: torch.bmm(res, act_t, out=ga), 2 * m * n * p))
    for _ in range(depth - 1):
        ops.append((lambda: torch.bmm(delta_t, w, out=h_t), 2 * m * n * n * p))
        ops.append((lambda: torch.bmm(delta_t.transpose(1, 2), act_t, out=gw), 2 * m * n * n * p))
    ops.append((lambda: torch.bmm(delta_t.transpose(1, 2), x, out=gw1), 2 * m * n * p * n0))
    return ops


# ------------------------------------------------------------------ the naive baseline


class MemberNet(nn.Module):
    """One network of the ensemble written with nn.Linear (NTK scaling in forward)."""

    def __init__(self, n0: int, width: int, depth: int) -> None:
        super().__init__()
        dims = [n0] + [width] * depth
        self.hidden = nn.ModuleList(
            nn.Linear(dims[i], dims[i + 1], bias=False) for i in range(depth)
        )
        self.readout = nn.Linear(width, 1, bias=False)
        for p in self.parameters():
            nn.init.normal_(p, std=math.sqrt(INIT_VARIANCE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.hidden:
            h = torch.relu(layer(h) / math.sqrt(layer.in_features))
        return self.readout(h).squeeze(-1) / math.sqrt(self.readout.in_features)


def naive_step(nets: list[MemberNet], x, y, decay: float, noise_std: float) -> None:
    for net in nets:
        net.zero_grad()
        loss = 0.5 * ((net(x) - y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(decay).add_(p.grad, alpha=-DT).add_(torch.randn_like(p) * noise_std)


def interleaved(fns: dict[str, Callable[[], object]], device: torch.device,
                repeats: int) -> dict[str, list[float]]:
    """Wall times of each function, called in turn round after round (after one warm-up
    round), so that a change in machine load affects all of them alike."""
    for fn in fns.values():
        fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


# ------------------------------------------------------------------ one shape


def bench_shape(name: str, shape: dict, device: torch.device, dtype, repeats: int) -> dict:
    m, n, depth, p, n0 = (shape[k] for k in ("members", "width", "depth", "stimuli",
                                               "input_dim"))
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(p, n0, device=device, dtype=dtype, generator=gen)
    y = torch.sign(torch.randn(p, device=device, dtype=dtype, generator=gen))
    net = EnsembleNetwork(members=m, input_dim=n0, width=n, depth=depth, activation="relu",
                          dtype=dtype, device=device)
    net.init_(INIT_VARIANCE, gen)
    integ = LangevinIntegrator(net, x, y, dt=DT, temperature=TEMPERATURE,
                               prior_variance=PRIOR_VARIANCE, generator=gen)
    ops = gemm_plan(m, n, n0, p, depth, device, dtype)
    flops = sum(f for _, f in ops)
    noise = torch.empty(net.n_params, device=device, dtype=dtype)
    nets = [MemberNet(n0, n, depth).to(device=device, dtype=dtype) for _ in range(m)]
    decay, std = ou_coefficients(DT, TEMPERATURE, PRIOR_VARIANCE)
    times = interleaved({
        "step": integ.step,
        "gemm": lambda: [op() for op, _ in ops],
        "randn": lambda: noise.normal_(generator=gen),
        "update": lambda: net.theta.add_(noise, alpha=1e-30),
        "naive": lambda: naive_step(nets, x, y, decay, std),
    }, device, repeats)
    med = {k: min(v) for k, v in times.items()}  # fastest round: least disturbed by others
    parts = med["gemm"] + med["randn"] + med["update"]
    itemsize = torch.finfo(dtype).bits // 8
    return {
        "shape": name, **shape, "params": net.n_params,
        "t_step": med["step"], "t_gemm": med["gemm"], "t_randn": med["randn"],
        "t_update": med["update"], "t_parts": parts, "ratio": med["step"] / parts,
        "t_naive": med["naive"], "speedup": med["naive"] / med["step"],
        "gemm_gflops": flops / med["gemm"] / 1e9,
        "update_gbs": 3 * net.n_params * itemsize / med["update"] / 1e9,
    }


def best_time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Fastest of ``repeats`` calls (what the device can reach), after one warm-up."""
    fn()
    sync(device)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def reference_rates(device: torch.device, dtype) -> tuple[float, float]:
    """GFLOP/s of one large square matmul; GB/s of the faster of a large ``copy_`` and a
    large in-place ``add_`` (bytes moved: 2 and 3 per element)."""
    k = 8192 if device.type == "cuda" else 4096
    a = torch.randn(k, k, device=device, dtype=dtype)
    b = torch.randn(k, k, device=device, dtype=dtype)
    c = torch.empty(k, k, device=device, dtype=dtype)
    t_mm = best_time(lambda: torch.mm(a, b, out=c), device, 3)
    size = 1 << 29 if device.type == "cuda" else 1 << 27
    src = torch.randn(size, device=device, dtype=dtype)
    dst = torch.randn(size, device=device, dtype=dtype)
    itemsize = torch.finfo(dtype).bits // 8
    copy_rate = 2 * size * itemsize / best_time(lambda: dst.copy_(src), device, 5)
    add_rate = 3 * size * itemsize / best_time(lambda: dst.add_(src, alpha=1e-30), device, 5)
    return 2 * k**3 / t_mm / 1e9, max(copy_rate, add_rate) / 1e9


# ------------------------------------------------------------------ report


def report(rows: list[dict], peak_gflops: float, peak_gbs: float, device: torch.device,
           command: str, note: str = "") -> str:
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"CPU ({platform.processor() or platform.machine()}), " \
                f"{torch.get_num_threads()} thread(s)"
    lines = [
        "`python benchmarks/bench_simulate.py` times one Langevin step of the whole ensemble "
        "(`LangevinIntegrator.step`: forward, hand-written backward with the decay fused into "
        "the GEMMs, noise) against its unavoidable parts timed alone in the same process "
        "(the same GEMMs as plain `mm`/`bmm`, one `normal_` over all parameters, one in-place "
        "`add_` over all parameters), and against a per-member loop of `nn.Module`s with "
        "autograd and a manual Langevin update. Bandwidth counts 3 x 4 bytes per parameter "
        "for the update pass.",
        "",
        f"Command: `{command}`. {note.rstrip('.') + '.' if note else ''}".rstrip(),
        "",
        f"Device: {where}; torch {torch.__version__}; float32. All timings of a shape are "
        "taken in interleaved rounds (step, GEMMs, randn, update, naive loop, repeat), so "
        "load changes hit all alike; every figure is the fastest round (the one least "
        "disturbed by other work on the machine).",
        f"References in the same run (fastest call, before and after the shapes): square matmul "
        f"{peak_gflops:.1f} GFLOP/s; streaming bandwidth {peak_gbs:.1f} GB/s (faster of a "
        f"large copy_ and a large in-place add_).",
        "",
        "| shape | members x width x depth, stimuli, N0 | parameters | batched step | "
        "GEMMs alone | randn alone | update pass alone | step / parts (target <= 1.3) | "
        "naive loop | speed-up (target >= 2 at B) | GEMM GFLOP/s (of matmul) | "
        "update GB/s (of streaming) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['shape']} | {r['members']} x {r['width']} x {r['depth']}, {r['stimuli']}, "
            f"{r['input_dim']} | {r['params'] / 1e6:.1f} M | {r['t_step'] * 1e3:.1f} ms | "
            f"{r['t_gemm'] * 1e3:.1f} ms | {r['t_randn'] * 1e3:.1f} ms | "
            f"{r['t_update'] * 1e3:.1f} ms | {r['ratio']:.2f} | {r['t_naive'] * 1e3:.1f} ms | "
            f"{r['speedup']:.1f}x | {r['gemm_gflops']:.1f} ({r['gemm_gflops'] / peak_gflops:.0%}) "
            f"| {r['update_gbs']:.1f} ({r['update_gbs'] / peak_gbs:.0%}) |"
        )
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """Replace (or append) the ``## Simulation step`` section of a markdown file."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## {SECTION}\n\n{body}\n"
    pattern = re.compile(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--shapes", default="A,B")
    parser.add_argument("--note", default="", help="sentence added to the markdown section")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from drift.simulate import resolve_device

    device = resolve_device(args.device)
    dtype = torch.float32
    torch.manual_seed(0)
    repeats = args.repeats or (20 if device.type == "cuda" else 5)
    peak_gflops, peak_gbs = reference_rates(device, dtype)
    rows = []
    for name in args.shapes.split(","):
        rows.append(bench_shape(name, SHAPES[name], device, dtype,
                                repeats if name == "A" else 2 * repeats))
        print(f"shape {name} done", flush=True)
    # references again after the shapes: the better of the two is what torch reaches
    again = reference_rates(device, dtype)
    peak_gflops, peak_gbs = max(peak_gflops, again[0]), max(peak_gbs, again[1])
    command = "python benchmarks/bench_simulate.py" + "".join(
        f" --{k} {v}" for k, v in (("device", args.device), ("threads", args.threads),
                                   ("repeats", args.repeats), ("shapes", args.shapes))
        if v is not None and (k, v) not in (("device", "auto"), ("shapes", "A,B")))
    text = report(rows, peak_gflops, peak_gbs, device, command, args.note)
    print(text)
    if args.markdown is not None:
        write_section(args.markdown, text)


if __name__ == "__main__":
    main()
