"""Whole jobs behind the command line: a theory run, and the main job of the README."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from drift.config import RunConfig, load_config
from drift.theory_run import theory_from_config, write_netcdf

__all__ = ["run_theory", "run_main"]


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def run_theory(config: RunConfig | str | Path | dict | None, out: str | Path, *,
               figures: str | Path | None = None, overwrite: bool = False,
               progress: bool = False, simulation=None) -> list[Path]:
    """Compute the theory for ``config``, write it to ``out`` (netCDF) and figures.

    Returns
    -------
    list of Path
        Files written.
    """
    from drift.figures import plot_errors, plot_hidden_drift, plot_output_mean

    cfg = load_config(config)
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    times = None if simulation is None else simulation["time"].values
    ds = theory_from_config(cfg, times=times, progress=progress)
    written = [write_netcdf(ds, out, overwrite=overwrite)]
    if figures is not None:
        fig_dir = Path(figures)
        fig_dir.mkdir(parents=True, exist_ok=True)
        written.append(_save(plot_output_mean(ds, simulation), fig_dir / "output_mean.png"))
        written.append(_save(plot_errors(ds), fig_dir / "errors.png"))
        written.append(_save(plot_hidden_drift(ds), fig_dir / "hidden_drift.png"))
    return written


def run_main(config: RunConfig | str | Path | dict | None, out_dir: str | Path, *,
             overwrite: bool = False, simulate: bool = True, progress: bool = True
             ) -> list[Path]:
    """The README's main job: simulate the ensemble, compute the theory at the same
    times, and write both datasets and the comparison figures into ``out_dir``.

    Files: ``simulation.zarr`` (when ``simulate``), ``theory.nc``, ``figures/*.png``.
    """
    cfg = load_config(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sim = None
    if simulate:
        from drift.simulate import simulate as run_simulation

        store = out_dir / "simulation.zarr"
        sim = run_simulation(cfg, out=store, overwrite=overwrite, progress=progress)
        written.append(store)
    written += run_theory(cfg, out_dir / "theory.nc", figures=out_dir / "figures",
                          overwrite=overwrite, progress=progress, simulation=sim)
    return written
