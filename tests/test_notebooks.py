"""Execute every notebook in notebooks/ top to bottom with small CI parameters.

Each notebook has a code cell tagged ``parameters`` (papermill convention) holding
laptop-sized defaults. The test inserts, right after it, a cell that sets ``quick = True``
and the CI values below (tiny ensembles, short runs; ``quick`` also limits torch to one
thread) and sends figures to a temporary folder, then runs the notebook with nbclient and
fails on the first error, or when the whole notebook runs longer than its timeout
(the kernel is then interrupted).
Requires ``nbclient``, ``nbformat`` and ``ipykernel``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"

# Values set after each notebook's parameters cell, and the notebook's timeout (s).
CI_PARAMETERS: dict[str, tuple[dict, int]] = {
    "01_quick_start": (
        {"members": 8, "width": 64, "duration": 200.0, "n_times": 20}, 150),
    "02_two_phases": (
        {"n_train": 10, "n_test": 40, "n_times": 25, "refine": 0.5,
         "temperatures": [1e-3, 1e-2], "depths": [1, 2]}, 150),
    "03_finite_width": (
        {"widths": [16, 32, 64, 128], "members": 8, "duration": 40.0, "n_times": 12}, 150),
    "04_representational_drift": (
        {"n_train": 10, "n_test": 20, "width": 64, "members": 6, "units": 32,
         "duration": 50.0, "n_late": 10, "n_boot": 5}, 200),
    "05_model_vs_recording": (
        {"n_sessions": 6, "n_units": 60, "width": 48, "members": 6,
         "model_duration": 60.0, "n_boot": 10}, 150),
}


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def inject_parameters(nb, values: dict) -> None:
    """Insert a cell setting ``quick = True`` and ``values`` after the parameters cell."""
    index = next(
        (i for i, c in enumerate(nb.cells)
         if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])),
        None,
    )
    if index is None:
        raise AssertionError("notebook has no cell tagged 'parameters'")
    lines = ["# Injected by tests/test_notebooks.py: CI parameters", "quick = True"]
    lines += [f"{k} = {v!r}" for k, v in values.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)


@contextlib.contextmanager
def _deadline(client, seconds: int):
    """Interrupt the kernel (SIGINT) once the notebook has run for ``seconds``.

    The running cell then fails with KeyboardInterrupt and nbclient shuts the kernel
    down as after any error; yields a list that holds True when the deadline fired.
    """
    fired: list[bool] = []

    def interrupt():
        process = getattr(getattr(client.km, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            fired.append(True)
            os.kill(process.pid, signal.SIGINT)

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def test_every_notebook_is_covered():
    names = {p.stem for p in _notebooks()}
    assert names, f"no notebooks found in {NOTEBOOK_DIR}"
    assert names == set(CI_PARAMETERS), "CI_PARAMETERS must list exactly the notebooks"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown", "a notebook opens with its one result"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "quick = False" in tagged[0].source and "figure_dir" in tagged[0].source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, "outputs must be stripped"
            assert cell.execution_count is None, "execution counts must be cleared"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path):
    values, timeout = CI_PARAMETERS[path.stem]
    nb = nbformat.read(path, as_version=4)
    figure_dir = tmp_path / "figures"
    inject_parameters(nb, {**values, "figure_dir": str(figure_dir)})
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.monotonic()
    with _deadline(client, timeout) as fired:
        try:
            client.execute()  # raises CellExecutionError on the first failing cell
        except nbclient.exceptions.CellExecutionError:
            if fired:
                pytest.fail(f"{path.name} ran longer than its timeout of {timeout} s")
            raise
    elapsed = time.monotonic() - start
    assert sorted(figure_dir.glob("*.png")), f"{path.name} saved no figure in figure_dir"
    assert elapsed < timeout
