"""The ``drift`` command-line program (typer). Thin: all logic lives in the library.

Every command prints a one-line error (no traceback) and exits with status 2 on bad
input: an invalid configuration, a missing file, or an output that already exists.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from drift.config import ConfigError

app = typer.Typer(
    name="drift",
    help=(
        "ndk-drift: Langevin ensembles of wide networks, their Neural Dynamical Kernel "
        "theory, and representational-drift analyses. Times are in units of the "
        "dynamics; see the README for the configuration keys."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CONFIG_HELP = (
    "YAML run configuration with sections network (depth, width, activation), dynamics "
    "(temperature T, prior_variance sigma2, init_variance sigma02, dt, duration), data "
    "(name, task, n_train, n_test, input_dim, normalise, path, seed), record (n_times, "
    "times, units, layers, max_store_gb), ensemble (members, seed), device, dtype. "
    "Omitted keys take their defaults (`drift config` prints them)."
)
SET_HELP = "Override one key, e.g. --set dynamics.temperature=0.1 (repeatable; YAML values)."


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _overrides(pairs: list[str] | None) -> dict:
    out = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--set expects KEY=VALUE (got {item!r})")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _load(config: Path | None, sets: list[str] | None):
    from drift.config import load_config

    return load_config(config, overrides=_overrides(sets))


def _guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ConfigError, ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted; everything written so far is kept", err=True)
        raise typer.Exit(code=130) from None


@app.command("config")
def config_cmd(
    config: Annotated[Path | None, typer.Argument(help=CONFIG_HELP)] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Validate a configuration and print it in full (defaults filled in)."""
    from drift.config import config_to_yaml

    cfg = _guard(_load, config, set_)
    typer.echo(config_to_yaml(cfg), nl=False)


@app.command("theory")
def theory_cmd(
    config: Annotated[Path | None, typer.Argument(help=CONFIG_HELP)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="netCDF file to write (.nc).")] = Path(
        "theory.nc"
    ),
    figures: Annotated[
        Path | None, typer.Option(help="Folder for the figures (PNG); none when omitted.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """NDK predictions (mean output, equilibrium posterior, hidden drift) for CONFIG.

    Writes a netCDF file with output_mean (time, stimulus), its numerical error,
    posterior_mean, train_loss, test_error and hidden_correlation (layer, time), the full
    configuration in its attributes.
    """
    from drift.pipeline import run_theory

    cfg = _guard(_load, config, set_)
    if out.suffix != ".nc":
        _fail(f"--out must end in .nc (got {str(out)!r})")
    _guard(run_theory, cfg, out, figures=figures, overwrite=overwrite, progress=progress)


@app.command("simulate")
def simulate_cmd(
    config: Annotated[Path | None, typer.Argument(help=CONFIG_HELP)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="zarr store to write (.zarr).")] = Path(
        "run.zarr"
    ),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing store.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")
    ] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a Langevin ensemble and stream its recordings into a zarr store.

    Records activity (time, member, layer, unit, stimulus), output, readout and loss on a
    log-spaced schedule; checkpoints weights and RNG state so --resume continues exactly.
    """
    from drift.simulate import simulate

    if resume and config is None:
        cfg = None
    else:
        cfg = _guard(_load, config, set_)
    ds = _guard(simulate, cfg, out=out, overwrite=overwrite, resume=resume, progress=progress)
    typer.echo(f"wrote {ds.sizes['time']} snapshots of {ds.sizes['member']} members to {out}")


@app.command("run")
def run_cmd(
    config: Annotated[Path | None, typer.Argument(help=CONFIG_HELP)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("results"),
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    simulate: Annotated[
        bool, typer.Option(help="Also simulate the ensemble and compare it with the theory.")
    ] = True,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """The main job: theory (and simulation) for CONFIG, with figures, into a folder."""
    from drift.pipeline import run_main

    cfg = _guard(_load, config, set_)
    written = _guard(run_main, cfg, out, overwrite=overwrite, simulate=simulate,
                     progress=progress)
    for path in written:
        typer.echo(f"wrote {path}")


@app.command("sweep")
def sweep_cmd(
    spec: Annotated[
        Path,
        typer.Argument(help="Sweep YAML: a base config plus lists of values for dotted keys "
                       "(grid or zip); see docs/sweeps.md."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Sweep folder (one zarr per run).")],
    scheduler: Annotated[
        str | None,
        typer.Option(help="Address of a running Dask scheduler (default: a local cluster)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Workers of the local cluster (default: one per GPU, "
                                 "else a CPU split).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Start the sweep folder afresh.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run every combination of a sweep on Dask; rerunning skips finished runs and resumes
    partial ones. Exits with status 1 when a run failed (see DIR/sweep.json)."""
    from drift.sweep import sweep_command

    summary = _guard(sweep_command, spec, out, scheduler, workers, overwrite=overwrite,
                     progress=progress)
    if not summary.ok:
        raise typer.Exit(code=1)


@app.command("convert")
def convert_cmd(
    spec: Annotated[
        Path,
        typer.Argument(help="YAML/JSON recording spec (reader, sessions, registration; "
                       "see docs/recordings.md)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .nc or .zarr.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Convert a recording (NWB, Suite2p, time series, arrays) into the project format."""
    from drift.io import convert_recording

    ds = _guard(convert_recording, spec, out, overwrite=overwrite)
    typer.echo(f"wrote {dict(ds.sizes)} to {out}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
