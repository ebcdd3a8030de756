"""Parameter sweeps: many runs on Dask workers, combined into one lazy dataset.

Example::

    from drift.sweep import open_sweep, sweep, sweep_drift_summary

    summary = sweep("sweep.yaml", "results/sweep")  # embedded local cluster
    ds = open_sweep("results/sweep")  # dims (temperature, width, seed, time, ...)
    tau = sweep_drift_summary(ds, pool=("member", "seed"))["tau_d"]  # (temperature, width, layer)

* :mod:`drift.sweep.spec`: the spec (base config + lists of values, grid or zip) and
  its up-front validation;
* :mod:`drift.sweep.engine`: :func:`sweep`, which runs one task per combination on an
  embedded ``LocalCluster`` or any Dask scheduler, skips complete runs, resumes partial
  ones and reports failures without stopping;
* :mod:`drift.sweep.task`: what a worker does for one task;
* :mod:`drift.sweep.cluster`: the embedded cluster (one worker per GPU, or a CPU split);
* :mod:`drift.sweep.manifest`: ``sweep.json``, every task and its status;
* :mod:`drift.sweep.combine`: :func:`open_sweep`;
* :mod:`drift.sweep.summary`: :func:`sweep_drift_summary`.

See docs/sweeps.md.
"""

from drift.sweep.combine import SweepAxesWarning, open_sweep
from drift.sweep.engine import SweepSummary, sweep, sweep_command
from drift.sweep.manifest import read_manifest
from drift.sweep.spec import SweepParameter, SweepSpec, SweepSpecError, SweepTask, load_sweep_spec
from drift.sweep.summary import sweep_dims, sweep_drift_summary

__all__ = [
    "SweepAxesWarning",
    "SweepParameter",
    "SweepSpec",
    "SweepSpecError",
    "SweepSummary",
    "SweepTask",
    "load_sweep_spec",
    "open_sweep",
    "read_manifest",
    "sweep",
    "sweep_command",
    "sweep_dims",
    "sweep_drift_summary",
]
