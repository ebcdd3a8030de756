"""The manifest of a sweep directory: ``sweep.json``, every task and its status.

Layout of a sweep directory::

    out_dir/
      sweep.json                                  # this manifest
      T=0.01_width=64_seed=0-1f3a9c2e.zarr/       # one run store per task
      ...

The manifest is written only by the process that drives the sweep (workers write their
own run stores), atomically (temporary file, then ``os.replace``). It holds the format
tag, the mode, the swept parameters (key, dimension name, values), the base
configuration, and one entry per task: ``index``, ``name`` (the store directory),
``position``, ``values``, ``status`` and, once run, ``attempts``, ``elapsed_s``, ``cpu_s``,
``n_written``/``n_times`` (snapshots committed / planned), ``worker``, ``finished``
(UTC time), ``error`` and ``traceback`` (failed tasks, which also carry their full
``config``). Statuses:

* ``pending``: no store yet;
* ``running``: submitted by a sweep that has not reported back (a sweep that was killed
  leaves this; the next sweep re-reads the stores);
* ``partial``: the store holds some committed snapshots; the next sweep resumes it;
* ``complete``: the run finished;
* ``failed``: the last attempt raised or its worker died; ``error`` and ``traceback``
  say why. The next sweep tries it again (resuming what was written).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from drift.sweep.spec import SweepSpec

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_FORMAT",
    "STATUSES",
    "new_manifest",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "sweep.json"
MANIFEST_FORMAT = "ndk-drift-sweep"
MANIFEST_VERSION = 1
STATUSES = ("pending", "running", "partial", "complete", "failed")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def new_manifest(spec: SweepSpec, previous: dict | None = None) -> dict:
    """The manifest of ``spec`` with every task ``pending``.

    Parameters
    ----------
    spec : SweepSpec
    previous : dict, optional
        The manifest found in the directory: the ``attempts`` of tasks of the same name
        are carried over.

    Returns
    -------
    dict
        JSON-serialisable manifest.
    """
    attempts = {}
    if previous:
        attempts = {t["name"]: int(t.get("attempts", 0)) for t in previous.get("tasks", [])}
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "mode": spec.mode,
        "shape": list(spec.shape),
        "parameters": [
            {"key": p.key, "dim": p.dim, "values": list(p.values)} for p in spec.parameters
        ],
        "base": spec.base,
        "created": (previous or {}).get("created", now()),
        "updated": now(),
        "counts": {},
        "tasks": [
            {
                "index": t.index,
                "name": t.name,
                "position": list(t.position),
                "values": t.values,
                "status": "pending",
                "attempts": attempts.get(t.name, 0),
            }
            for t in spec.tasks
        ],
    }


def read_manifest(out_dir: str | Path) -> dict:
    """Read ``out_dir/sweep.json``.

    Raises
    ------
    FileNotFoundError
        No manifest: ``out_dir`` is not a sweep directory.
    ValueError
        The file is not a sweep manifest.
    """
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(out_dir)!r} is not a sweep directory (no {MANIFEST_NAME}); run "
            "drift.sweep.sweep(spec, out_dir) first"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not a readable sweep manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{str(path)!r} is not an ndk-drift sweep manifest")
    return manifest


def write_manifest(out_dir: str | Path, manifest: dict) -> None:
    """Write ``manifest`` to ``out_dir/sweep.json`` atomically, with fresh counts."""
    out = Path(out_dir)
    manifest["updated"] = now()
    counts = Counter(t["status"] for t in manifest["tasks"])
    manifest["counts"] = {s: counts.get(s, 0) for s in STATUSES}
    text = json.dumps(manifest, indent=1, allow_nan=True)
    fd, tmp = tempfile.mkstemp(prefix=".sweep-", suffix=".json.tmp", dir=out)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out / MANIFEST_NAME)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
