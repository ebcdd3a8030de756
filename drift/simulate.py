"""Run a Langevin ensemble and record it in the ndk-drift data format.

:func:`simulate` trains ``ensemble.members`` networks of THEORY.md section 1 at once with
the exact Ornstein-Uhlenbeck step of section 2 and records, at every snapshot time, on
all train and test stimuli:

* ``activity (time, member, layer, unit, stimulus)``: ``phi(h_l)`` of the first
  ``record.units`` units of each layer in ``record.layers``;
* ``output (time, member, stimulus)``: ``f(x, t)``;
* ``readout (time, member, unit)``: the readout weights of the recorded units;
* ``loss (time, member)``: ``1/2 sum_mu (f(x_mu) - y_mu)^2`` on the training set.

Snapshot times: the requested times (``config.record_times()``) are rounded to whole
steps; the snapshot for time ``t`` is taken after ``round(t / dt)`` steps, and the
``time`` coordinate holds the exact step time ``n dt`` (coordinate ``step`` holds ``n``).
Requested times that round to the same step are recorded once.

With ``out`` (a ``.zarr`` path) every snapshot is streamed to disk as soon as it is taken
and memory stays flat however long the run; checkpoints (weights, random-generator state,
step) are written to ``<out>/checkpoint/state.pt`` so that ``resume=True`` continues a killed run
and reproduces an uninterrupted one exactly (same device, same dtype).
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time as _time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
import xarray as xr
import yaml
import zarr

from drift.config import RunConfig, config_to_dict, config_to_yaml, load_config
from drift.io.runstore import (
    StoreWriter,
    create_store,
    is_store,
    load_checkpoint,
    open_run,
    remove_store,
    save_checkpoint,
)
from drift.io.schema import FORMAT_NAME, FORMAT_VERSION, MODEL_VARIABLES, validate_dataset
from drift.langevin import LangevinIntegrator, stable_dt_bound
from drift.network import EnsembleNetwork

__all__ = [
    "DivergenceError",
    "data_hash",
    "estimate_store_bytes",
    "resolve_device",
    "simulate",
    "simulate_command",
    "snapshot_steps",
]

log = logging.getLogger(__name__)

TIME_UNITS = "time units of the dynamics"
_CHECK_EVERY = 256  # steps between divergence checks / progress updates
_DIVERGENCE_FACTOR = 1e6  # loss above this times its initial value counts as diverged
_MAX_CHUNK_BYTES = 64 << 20  # largest zarr chunk of `activity`
_FORWARD_BYTES = 256 << 20  # activations held at once by a recording forward pass
_CHECKPOINT_VERSION = 1

_VARIABLE_ATTRS = {
    "activity": {"units": "1", "long_name": "post-activation phi(h_l) of hidden units"},
    "output": {"units": "1", "long_name": "network output f(x, t)"},
    "readout": {"units": "1", "long_name": "readout weights a(t) of the recorded units"},
    "loss": {"units": "1", "long_name": "training loss 1/2 sum_mu (f(x_mu) - y_mu)^2"},
}


class DivergenceError(ValueError):
    """The dynamics blew up (NaN/inf or exploding loss): ``dynamics.dt`` is too large.

    Attributes
    ----------
    partial : xarray.Dataset or None
        The snapshots recorded before the divergence (in-memory runs; a store keeps them).
    """

    def __init__(self, message: str, partial: xr.Dataset | None = None) -> None:
        super().__init__(message)
        self.partial = partial


# ----------------------------------------------------------------------------- planning


def snapshot_steps(config: RunConfig | Mapping | str | Path) -> np.ndarray:
    """Step counts at which snapshots are taken.

    Returns
    -------
    ndarray of int64, shape (n_snapshots,)
        ``unique(round(t / dt))`` over ``config.record_times()``; starts with 0.
    """
    cfg = load_config(config)
    t = np.asarray(cfg.record_times(), dtype=np.float64)
    return np.unique(np.rint(t / cfg.dynamics.dt).astype(np.int64))


def _recorded_layers(cfg: RunConfig) -> list[int]:
    if cfg.record.layers is None:
        return list(range(1, cfg.network.depth + 1))
    return sorted(set(cfg.record.layers))


def _recorded_units(cfg: RunConfig) -> int:
    n = cfg.network.width
    return n if cfg.record.units is None else min(cfg.record.units, n)


def estimate_store_bytes(config: RunConfig | Mapping | str | Path, n_stimuli: int) -> int:
    """Size in bytes of the recording of a run (uncompressed).

    ``times x members x (layers x units x stimuli + stimuli + units + 1) x bytes`` plus
    the coordinates.

    Parameters
    ----------
    config : RunConfig, mapping or YAML path
    n_stimuli : int
        Train plus test stimuli.
    """
    cfg = load_config(config)
    n_t = snapshot_steps(cfg).size
    m, lr, u = cfg.ensemble.members, len(_recorded_layers(cfg)), _recorded_units(cfg)
    item = 4 if cfg.dtype == "float32" else 8
    per_time = m * (lr * u * n_stimuli + n_stimuli + u + 1)
    coords = 16 * n_t + 24 * n_stimuli + 8 * (lr + u + m)
    return int(n_t * per_time * item + coords)


def _size_text(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"  # pragma: no cover


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but CUDA is not available (use 'auto')")
    return dev


def _as_array(name: str, value, ndim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dims (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or inf")
    return arr


def _resolve_data(cfg: RunConfig, x_train, y_train, x_test, y_test):
    given = [v is not None for v in (x_train, y_train, x_test, y_test)]
    if not any(given):
        from drift.datasets import load_dataset

        d = load_dataset(cfg)
        return d.x_train, d.y_train, d.x_test, d.y_test, d.name
    if x_train is None or y_train is None:
        raise ValueError("pass both x_train and y_train (or neither, to use config.data)")
    if (x_test is None) != (y_test is None):
        raise ValueError("pass both x_test and y_test, or neither")
    xtr = _as_array("x_train", x_train, 2)
    ytr = _as_array("y_train", y_train, 1)
    if x_test is None:
        xte, yte = np.zeros((0, xtr.shape[1])), np.zeros(0)
    else:
        xte, yte = _as_array("x_test", x_test, 2), _as_array("y_test", y_test, 1)
    if xtr.shape[0] != ytr.shape[0]:
        raise ValueError(f"x_train has {xtr.shape[0]} rows but y_train {ytr.shape[0]}")
    if xte.shape[0] != yte.shape[0]:
        raise ValueError(f"x_test has {xte.shape[0]} rows but y_test {yte.shape[0]}")
    if xte.shape[1] != xtr.shape[1]:
        raise ValueError(f"x_test has {xte.shape[1]} features but x_train {xtr.shape[1]}")
    if xtr.shape[0] + xte.shape[0] == 0:
        raise ValueError("no stimuli: x_train and x_test are both empty")
    return xtr, ytr, xte, yte, "arrays"


def data_hash(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()


def _config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    def flat(tree, prefix=""):
        out = {}
        for k, v in tree.items():
            key = f"{prefix}{k}"
            out.update(flat(v, key + ".") if isinstance(v, dict) else {key: v})
        return out

    fa, fb = flat(config_to_dict(a)), flat(config_to_dict(b))
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))


# ------------------------------------------------------------------------ the dataset


def _coords(times, steps, y_train, y_test, layers, n_units, members) -> dict:
    p, pt = y_train.size, y_test.size
    split = np.array(["train"] * p + ["test"] * pt, dtype=object)
    return {
        "time": ("time", np.asarray(times, dtype=np.float64),
                 {"units": TIME_UNITS, "long_name": "simulated time (steps x dt)"}),
        "step": ("time", np.asarray(steps, dtype=np.int64),
                 {"long_name": "number of Langevin steps taken"}),
        "stimulus": ("stimulus", np.arange(p + pt, dtype=np.int64),
                     {"long_name": "stimulus index (train first, then test)"}),
        "split": ("stimulus", split, {"long_name": "train or test stimulus"}),
        "target": ("stimulus", np.concatenate([y_train, y_test]).astype(np.float64),
                   {"long_name": "target y"}),
        "layer": ("layer", np.asarray(layers, dtype=np.int64), {"long_name": "hidden layer"}),
        "unit": ("unit", np.arange(n_units, dtype=np.int64), {"long_name": "hidden unit"}),
        "member": ("member", np.arange(members, dtype=np.int64),
                   {"long_name": "ensemble member"}),
    }


def _build_dataset(data: Mapping[str, object], coords: Mapping, attrs: Mapping) -> xr.Dataset:
    data_vars = {
        name: (dims, data[name], dict(_VARIABLE_ATTRS[name]))
        for name, dims in MODEL_VARIABLES.items()
    }
    coord_vars = {k: xr.Variable(d, v, a) for k, (d, v, a) in coords.items()}
    return xr.Dataset(data_vars, coords=coord_vars, attrs=dict(attrs))


def _shapes(n_t, members, n_layers, n_units, n_stim) -> dict[str, tuple[int, ...]]:
    return {
        "activity": (n_t, members, n_layers, n_units, n_stim),
        "output": (n_t, members, n_stim),
        "readout": (n_t, members, n_units),
        "loss": (n_t, members),
    }


def _chunks(shapes: Mapping[str, tuple[int, ...]], itemsize: int) -> dict[str, tuple[int, ...]]:
    chunks = {name: (1, *shape[1:]) for name, shape in shapes.items()}
    _, m, lr, u, s = shapes["activity"]
    per_member = max(1, lr * u * s * itemsize)
    chunks["activity"] = (1, max(1, min(m, _MAX_CHUNK_BYTES // per_member)), lr, u, s)
    return chunks


class _MemoryWriter:
    """Collects snapshots in preallocated arrays (runs without ``out``)."""

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], dtype: np.dtype) -> None:
        self.arrays = {name: np.full(shape, np.nan, dtype=dtype) for name, shape in shapes.items()}
        self.n_written = 0
        self.attrs: dict = {}

    def write(self, index: int, values: Mapping[str, np.ndarray]) -> None:
        for name, arr in values.items():
            self.arrays[name][index] = arr

    def commit(self, n_written: int) -> None:
        self.n_written = n_written

    def set_attrs(self, **attrs) -> None:
        self.attrs.update(attrs)

    def dataset(self, coords: Mapping, attrs: Mapping) -> xr.Dataset:
        n = self.n_written
        coords = dict(coords)
        for name in ("time", "step"):
            dims, values, a = coords[name]
            coords[name] = (dims, values[:n], a)
        data = {name: arr[:n] for name, arr in self.arrays.items()}
        return _build_dataset(data, coords, {**attrs, **self.attrs, "n_written": n})


# ------------------------------------------------------------------------- recording


@torch.no_grad()
def _snapshot(net: EnsembleNetwork, x_all: torch.Tensor, y_train: torch.Tensor,
              layer_index: list[int], n_units: int) -> dict[str, np.ndarray]:
    """Record every member on all stimuli (member blocks bound the memory)."""
    M, N, S, P = net.members, net.width, x_all.shape[0], y_train.shape[0]
    per_member = max(1, N * max(S, 1) * x_all.element_size() * (net.depth + 1))
    block = max(1, min(M, _FORWARD_BYTES // per_member))
    acts, outs = [], []
    for start in range(0, M, block):
        fwd = net.forward(x_all, members=slice(start, start + block))
        acts.append(torch.stack([fwd.activations[i][:, :n_units, :] for i in layer_index], 1))
        outs.append(fwd.output)
    output = torch.cat(outs)
    resid = output[:, :P] - y_train
    loss = 0.5 * (resid * resid).sum(dim=1)
    return {
        "activity": torch.cat(acts).cpu().numpy(),
        "output": output.cpu().numpy(),
        "readout": net.readout[:, :n_units].cpu().numpy(),
        "loss": loss.cpu().numpy(),
    }


def _announce(message: str, progress: bool) -> None:
    log.info(message)
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)


# --------------------------------------------------------------------------- the run


def simulate(
    config: RunConfig | Mapping | str | Path | None = None,
    *,
    x_train: np.ndarray | None = None,
    y_train: np.ndarray | None = None,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    freeze_readout_at: float | None = None,
    checkpoint_interval: float = 120.0,
    on_snapshot: Callable[[int, int, float], None] | None = None,
) -> xr.Dataset:
    """Simulate a Langevin ensemble and record it (THEORY.md sections 1-2, 6).

    Parameters
    ----------
    config : RunConfig, mapping, YAML path or None
        The run (see :mod:`drift.config`). With ``resume=True`` it may be None: the
        configuration stored in ``out`` is used.
    x_train, y_train, x_test, y_test : ndarray, optional
        Stimuli ``(P, N0)``/``(P_test, N0)`` and targets ``(P,)``/``(P_test,)`` that
        replace the dataset named in ``config.data``. ``P = 0`` (no training data) runs
        the prior dynamics only.
    out : str or Path, optional
        ``.zarr`` store to stream the recording into. Without it everything is kept in
        memory and returned.
    overwrite : bool
        Replace an existing store at ``out``.
    resume : bool
        Continue the run in ``out`` from its last checkpoint; gives the same result as
        an uninterrupted run.
    progress : bool
        Show a progress bar (simulated time, steps/s, mean training loss) on stderr.
    freeze_readout_at : float, optional
        Frozen-readout experiment (THEORY.md section 6): from this time on (rounded to
        a whole step) the readout ``a`` is kept fixed and learning stops; the hidden
        weights follow the prior OU dynamics. Stored as attribute ``freeze_readout_at``.
    checkpoint_interval : float
        Wall-clock seconds between checkpoints of a streamed run (0: at every check,
        i.e. every snapshot and every 256 steps). A checkpoint is always written at the
        start and at the end.
    on_snapshot : callable, optional
        ``on_snapshot(index, step, time)`` after each snapshot is committed; an
        exception raised there stops the run (the store keeps what was committed).

    Returns
    -------
    xarray.Dataset
        ``kind = "simulation"`` dataset of docs/data_format.md. For a streamed run it is
        opened lazily from ``out`` (:func:`drift.io.open_run`).

    Raises
    ------
    FileExistsError
        ``out`` exists and neither ``overwrite`` nor ``resume`` is set.
    DivergenceError
        (a ``ValueError``) NaN/inf or an exploding loss; names ``dynamics.dt`` and the
        stable bound estimated from the NTK.
    ValueError
        Estimated store larger than ``record.max_store_gb``; bad arrays; a resume whose
        config, data or options differ from the stored run.
    """
    if resume and out is None:
        raise ValueError("resume=True needs `out`, the store of the run to continue")
    if resume and overwrite:
        raise ValueError("pass either resume=True or overwrite=True, not both")
    out_path = Path(out) if out is not None else None
    ckpt = None
    if resume:
        if not is_store(out_path):
            raise FileNotFoundError(f"nothing to resume: {str(out_path)!r} is not a run store")
        stored = dict(zarr.open_group(str(out_path), mode="r").attrs)
        if "config" not in stored:
            raise ValueError(f"{str(out_path)!r} holds no run configuration; cannot resume")
        stored_cfg = load_config(yaml.safe_load(stored["config"]))
        cfg = stored_cfg if config is None else load_config(config)
        diff = _config_differences(cfg, stored_cfg)
        if diff:
            raise ValueError(
                f"cannot resume {str(out_path)!r}: the config differs from the stored run in "
                f"{diff}"
            )
        stored_freeze = stored.get("freeze_readout_at")
        if stored.get("complete") == 1:
            _announce(f"{out_path}: run already complete; nothing to resume", progress)
            return open_run(out_path)
        ckpt = load_checkpoint(out_path)
        arrays = [ckpt[k].numpy() for k in ("x_train", "y_train", "x_test", "y_test")]
        if x_train is not None or y_train is not None:
            given = _resolve_data(cfg, x_train, y_train, x_test, y_test)[:4]
            if data_hash(*given) != data_hash(*arrays):
                raise ValueError(
                    f"cannot resume {str(out_path)!r}: the arrays passed differ from the "
                    "stored run's"
                )
        xtr, ytr, xte, yte = arrays
        data_name = stored.get("data_name", "")
        if freeze_readout_at is None and stored_freeze is not None:
            freeze_readout_at = float(stored_freeze)
    else:
        cfg = load_config(config)
        if out_path is not None and (out_path.exists() or out_path.is_symlink()):
            if not overwrite:
                raise FileExistsError(
                    f"{str(out_path)!r} already exists; pass overwrite=True to replace it "
                    "or resume=True to continue it"
                )
        xtr, ytr, xte, yte, data_name = _resolve_data(cfg, x_train, y_train, x_test, y_test)

    # ---------------------------------------------------------------- plan and budget
    dyn, net_cfg = cfg.dynamics, cfg.network
    dt = dyn.dt
    steps = snapshot_steps(cfg)
    times = steps * dt
    layers = _recorded_layers(cfg)
    n_units = _recorded_units(cfg)
    members = cfg.ensemble.members
    P, S = ytr.size, ytr.size + yte.size
    n_bytes = estimate_store_bytes(cfg, S)
    limit = cfg.record.max_store_gb * 1e9
    shape_text = (
        f"{steps.size} times x {members} members x {len(layers)} layers x {n_units} units "
        f"x {S} stimuli x {4 if cfg.dtype == 'float32' else 8} bytes"
    )
    if n_bytes > limit:
        raise ValueError(
            f"the recording would take {_size_text(n_bytes)} ({shape_text}), more than "
            f"record.max_store_gb = {cfg.record.max_store_gb}; record fewer units "
            f"(record.units), layers (record.layers) or times (record.n_times), or raise "
            f"record.max_store_gb"
        )
    freeze_step = None
    if freeze_readout_at is not None:
        if not 0 <= freeze_readout_at <= dyn.duration:
            raise ValueError(
                f"freeze_readout_at must lie in [0, dynamics.duration={dyn.duration}] "
                f"(got {freeze_readout_at})"
            )
        freeze_step = int(round(freeze_readout_at / dt))
    if ckpt is not None and ckpt.get("freeze_step") != freeze_step:
        raise ValueError(
            f"cannot resume {str(out_path)!r}: freeze_readout_at differs from the stored run"
        )

    # ---------------------------------------------------------------- state
    device = resolve_device(cfg.device)
    tdtype = torch.float32 if cfg.dtype == "float32" else torch.float64
    np_dtype = np.float32 if cfg.dtype == "float32" else np.float64
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.ensemble.seed)
    net = EnsembleNetwork(
        members=members, input_dim=xtr.shape[1], width=net_cfg.width, depth=net_cfg.depth,
        activation=net_cfg.activation, dtype=tdtype, device=device,
    )
    if ckpt is not None:
        if ckpt.get("device_type") != device.type:
            raise ValueError(
                f"cannot resume {str(out_path)!r}: it was checkpointed on "
                f"{ckpt.get('device_type')!r}, this run is on {device.type!r}"
            )
        net.theta.copy_(ckpt["theta"].to(device=device, dtype=tdtype))
        generator.set_state(ckpt["rng_state"])
    else:
        net.init_(dyn.init_variance, generator)
    x_tr = torch.as_tensor(xtr, dtype=tdtype, device=device)
    y_tr = torch.as_tensor(ytr, dtype=tdtype, device=device)
    x_all = torch.as_tensor(np.concatenate([xtr, xte]), dtype=tdtype, device=device)
    integrator = LangevinIntegrator(
        net, x_tr, y_tr, dt=dt, temperature=dyn.temperature,
        prior_variance=dyn.prior_variance, generator=generator,
    )
    if ckpt is not None:
        dt_bound = float(ckpt["dt_bound"])
    else:
        scales = [1.0]
        if dyn.temperature > 0 and dyn.prior_variance > dyn.init_variance:
            scales.append(math.sqrt(dyn.prior_variance / dyn.init_variance))
        dt_bound = stable_dt_bound(net, x_tr, weight_scales=tuple(scales))
    bound_text = "no limit (no training data)" if math.isinf(dt_bound) else f"{dt_bound:.4g}"
    if dt >= dt_bound:
        message = (
            f"dynamics.dt = {dt} is not below the stable bound {bound_text} estimated from "
            f"the NTK (dt * max eig(NTK Gram on the training set) < 1); the run may diverge"
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        log.warning(message)

    coords = _coords(times, steps, ytr, yte, layers, n_units, members)
    import drift

    attrs = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": "simulation",
        "config": config_to_yaml(cfg),
        "package_version": drift.__version__,
        "seed": int(cfg.ensemble.seed),
        "time_units": TIME_UNITS,
        "dt": float(dt),
        "n_times": int(steps.size),
        "data_name": data_name,
        "data_sha256": data_hash(xtr, ytr, xte, yte),
        "device": device.type,
        "n_written": 0,
        "complete": 0,
    }
    if math.isfinite(dt_bound):
        attrs["dt_stable_bound"] = float(dt_bound)
    if freeze_step is not None:
        attrs["freeze_readout_at"] = float(freeze_step * dt)
    shapes = _shapes(steps.size, members, len(layers), n_units, S)
    _announce(
        f"simulate: {members} members, depth {net_cfg.depth}, width {net_cfg.width}, "
        f"{P} train + {S - P} test stimuli, {int(steps[-1])} steps of dt = {dt} "
        f"(stable bound {bound_text}), {steps.size} snapshots; "
        f"estimated recording {_size_text(n_bytes)} ({shape_text}) on {device}",
        progress,
    )

    # ---------------------------------------------------------------- writer
    if out_path is None:
        writer: StoreWriter | _MemoryWriter = _MemoryWriter(shapes, np.dtype(np_dtype))
    elif ckpt is None:
        import dask.array as da

        if out_path.exists() or out_path.is_symlink():
            remove_store(out_path)
        chunks = _chunks(shapes, np.dtype(np_dtype).itemsize)
        lazy = {
            name: da.zeros(shape, chunks=chunks[name], dtype=np_dtype)
            for name, shape in shapes.items()
        }
        create_store(
            out_path, _build_dataset(lazy, coords, attrs),
            {name: {"chunks": chunks[name]} for name in shapes},
        )
        writer = StoreWriter(out_path)
    else:
        writer = StoreWriter(out_path)
        writer.commit(min(writer.n_written, int(ckpt["next_snapshot"])))
        writer.set_attrs(complete=0, error="")

    state = {
        "step": int(ckpt["step"]) if ckpt is not None else 0,
        "next": int(ckpt["next_snapshot"]) if ckpt is not None else 0,
        "loss_ref": float(ckpt["loss_ref"]) if ckpt is not None else math.nan,
        "last_checkpoint": _time.monotonic(),
    }

    def checkpoint(force: bool = False) -> None:
        if out_path is None:
            return
        now = _time.monotonic()
        if not force and now - state["last_checkpoint"] < checkpoint_interval:
            return
        save_checkpoint(out_path, {
            "version": _CHECKPOINT_VERSION,
            "step": state["step"],
            "next_snapshot": state["next"],
            "theta": net.theta.detach().cpu().clone(),
            "rng_state": generator.get_state(),
            "device_type": device.type,
            "loss_ref": state["loss_ref"],
            "dt_bound": dt_bound,
            "freeze_step": freeze_step,
            "x_train": torch.from_numpy(np.ascontiguousarray(xtr)),
            "y_train": torch.from_numpy(np.ascontiguousarray(ytr)),
            "x_test": torch.from_numpy(np.ascontiguousarray(xte)),
            "y_test": torch.from_numpy(np.ascontiguousarray(yte)),
        })
        state["last_checkpoint"] = _time.monotonic()

    def diverged(loss_max: float, where: str) -> None:
        step = state["step"]
        if math.isfinite(loss_max) and not (
            math.isfinite(state["loss_ref"])
            and loss_max > _DIVERGENCE_FACTOR * max(state["loss_ref"], 1e-3)
        ):
            return
        what = "is not finite" if not math.isfinite(loss_max) else (
            f"= {loss_max:.3g} exceeds {_DIVERGENCE_FACTOR:g} x its initial value "
            f"{state['loss_ref']:.3g}"
        )
        kept = writer.n_written
        last = f"t = {times[kept - 1]:.6g}" if kept else "none"
        message = (
            f"the dynamics diverged at t = {step * dt:.6g} (step {step}, {where}): the training "
            f"loss {what}. dynamics.dt = {dt} is too large: the stable bound estimated from the "
            f"NTK is dt < {bound_text} (dt * max eig(NTK Gram on the training set) < 1). "
            f"Snapshots kept: {kept} (last {last})"
            + (f" in {str(out_path)!r}." if out_path is not None else ".")
        )
        writer.set_attrs(error=f"diverged at t = {step * dt:.6g}")
        partial = None
        if isinstance(writer, _MemoryWriter):
            partial = writer.dataset(coords, attrs)
        raise DivergenceError(message, partial)

    if out_path is not None and ckpt is None:
        checkpoint(force=True)

    from tqdm.auto import tqdm

    n_total = int(steps[-1])
    bar = tqdm(
        total=n_total, initial=state["step"], unit="step", desc="simulate",
        disable=not progress, file=sys.stderr, dynamic_ncols=True, smoothing=0.1,
        mininterval=0.5,
    )
    last_loss: torch.Tensor | None = None
    try:
        while state["next"] < steps.size:
            k = state["next"]
            target = int(steps[k])
            while state["step"] < target:
                learning = freeze_step is None or state["step"] < freeze_step
                loss = integrator.step(learn=learning, freeze_readout=not learning)
                if loss is not None:
                    last_loss = loss
                state["step"] += 1
                if state["step"] % _CHECK_EVERY == 0:
                    if last_loss is not None:
                        loss_max = float(last_loss.max())
                        diverged(loss_max, "during training")
                        bar.set_postfix(t=f"{state['step'] * dt:.4g}",
                                        loss=f"{float(last_loss.mean()):.4g}", refresh=False)
                        last_loss = None
                    else:
                        bar.set_postfix(t=f"{state['step'] * dt:.4g}", refresh=False)
                    bar.update(state["step"] - bar.n)
                    checkpoint()
            values = _snapshot(net, x_all, y_tr, [layer - 1 for layer in layers], n_units)
            snap_loss = values["loss"]
            if k == 0 and not math.isfinite(state["loss_ref"]):
                state["loss_ref"] = float(np.max(snap_loss)) if P else 0.0
            if P:
                diverged(float(np.max(snap_loss)) if np.all(np.isfinite(snap_loss))
                         else math.nan, f"at snapshot {k}")
            if not np.all(np.isfinite(values["activity"])) or not np.all(
                np.isfinite(values["output"])
            ):
                diverged(math.nan, f"at snapshot {k}")
            writer.write(k, values)
            writer.commit(k + 1)
            state["next"] = k + 1
            bar.update(state["step"] - bar.n)
            bar.set_postfix(t=f"{state['step'] * dt:.4g}",
                            loss=f"{float(np.mean(snap_loss)):.4g}" if P else "-", refresh=False)
            checkpoint()
            if on_snapshot is not None:
                on_snapshot(k, state["step"], float(times[k]))
    finally:
        bar.close()

    writer.set_attrs(complete=1, error="")
    if out_path is None:
        ds = writer.dataset(coords, {**attrs, "complete": 1})
        validate_dataset(ds, kind="simulation", check_values=False)
        return ds
    checkpoint(force=True)
    return open_run(out_path)


def simulate_command(
    config: str | Path | None,
    out: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Entry point of ``drift simulate``: run a config into a ``.zarr`` store.

    Parameters
    ----------
    config : str, Path or None
        YAML file of the run (None with ``resume``: use the stored configuration).
    out : str or Path
        The ``.zarr`` store to write (or to continue).
    overwrite, resume, progress : bool
        As in :func:`simulate`.

    Returns
    -------
    Path
        The store written.
    """
    ds = simulate(config, out=out, overwrite=overwrite, resume=resume, progress=progress)
    print(
        f"wrote {ds.sizes['time']} snapshots of {ds.sizes['member']} members "
        f"(t = 0 .. {float(ds.time[-1]):.6g}) to {out}"
    )
    return Path(out)
