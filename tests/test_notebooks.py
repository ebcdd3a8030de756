"""Execute every notebook in notebooks/ top to bottom with small CI parameters.

Each notebook has a code cell tagged ``parameters`` (papermill convention) holding
laptop-sized defaults. The test inserts, right after it, a cell that sets the CI values
below (tiny ensembles, short runs, one thread) and writes figures to a temporary folder,
then runs the notebook with nbclient and fails on the first error. Requires ``nbclient``,
``nbformat`` and ``ipykernel``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"

# Values set after each notebook's parameters cell, and the per-notebook timeout (s).
CI_PARAMETERS: dict[str, tuple[dict, int]] = {
    "01_quick_start": (
        {"members": 8, "width": 64, "duration": 200.0, "n_times": 20}, 180),
    "02_two_phases": (
        {"n_train": 10, "n_test": 40, "n_times": 25, "refine": 0.5,
         "temperatures": [1e-3, 1e-2], "depths": [1, 2]}, 180),
    "03_finite_width": ({}, 180),
    "04_representational_drift": ({}, 240),
    "05_model_vs_recording": ({}, 180),
}


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def inject_parameters(nb, values: dict) -> None:
    """Insert a cell setting ``values`` (and ``quick = True``) after the parameters cell."""
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


def test_every_notebook_is_covered():
    names = {p.stem for p in _notebooks()}
    assert names, f"no notebooks found in {NOTEBOOK_DIR}"
    assert names == set(CI_PARAMETERS), "CI_PARAMETERS must list exactly the notebooks"


def test_notebooks_are_stored_without_outputs():
    for path in _notebooks():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: outputs must be stripped"
                assert cell.execution_count is None, f"{path.name}: execution counts set"
        assert nb.cells[0].cell_type == "markdown", f"{path.name}: must open with markdown"


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
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.monotonic() - start
    figures = sorted(figure_dir.glob("*.png"))
    assert figures, f"{path.name} saved no figure in figure_dir"
    assert elapsed < timeout
