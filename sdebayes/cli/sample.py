"""``sdebayes sample``: fit the SDE model and print posterior summaries."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from sdebayes.cli._app import EXIT_DIAGNOSTICS, app, progress_enabled
from sdebayes.cli._common import (
    CiProbOption,
    DataArgument,
    ObjectivesOption,
    StrategyOption,
    check_ci_prob,
    echo_json,
    parse_objectives,
    terminal_warnings,
)

__all__ = ["sample"]

logger = logging.getLogger(__name__)

_SAMPLERS = ("nutpie", "numpyro", "pymc")


@app.command()
def sample(
    data: DataArgument = None,
    strategy: StrategyOption = None,
    objectives: ObjectivesOption = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME|TOML",
            help="Bundled model (hierarchical, pooled, unpooled) or path of a model TOML file.",
        ),
    ] = "hierarchical",
    draws: Annotated[
        int, typer.Option(min=1, metavar="N", help="Posterior draws per chain, after tuning.")
    ] = 1000,
    tune: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="Tuning (warm-up) iterations per chain, discarded."),
    ] = 1000,
    chains: Annotated[
        int, typer.Option(min=1, metavar="N", help="Independent chains (R-hat needs 2+).")
    ] = 4,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="N",
            help="Random seed. Default: a fresh one, recorded in the output file and summary.",
            show_default=False,
        ),
    ] = None,
    sampler: Annotated[
        str,
        typer.Option(metavar="NAME", help="NUTS implementation: nutpie, numpyro or pymc."),
    ] = "nutpie",
    backend: Annotated[
        str,
        typer.Option(
            metavar="numba|jax",
            help=(
                "What nutpie compiles the model with: jax compiles in seconds; numba samples "
                "several times faster but compiles for 30 s (minutes on a cold cache)."
            ),
        ),
    ] = "numba",
    discretization: Annotated[
        str,
        typer.Option(
            metavar="auto|euler|exact",
            help=(
                "Transition density: Euler-Maruyama (the published model) or the exact "
                "transition of the linear SDE. auto: exact when the data have a time column "
                "or uneven steps, euler otherwise."
            ),
        ),
    ] = "auto",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Posterior NetCDF file. Default: results/<data name>-<model name>.nc.",
            show_default=False,
        ),
    ] = None,
    ci_prob: CiProbOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary instead of tables.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(help="Exit with code 3 when R-hat, ESS or divergences fail thresholds."),
    ] = False,
    progress: Annotated[
        bool, typer.Option(help="Show the sampler's progress bar (only on a terminal).")
    ] = True,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help=(
                "Compute the sufficient statistics of a partitioned Parquet directory or a Zarr "
                "store on this Dask scheduler (e.g. tcp://host:8786); every session must lie in "
                "one partition. A Zarr store is always reduced with dask, locally without it."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fit the hierarchical SDE model to trajectories and summarise the posterior.

    All strategies in the data are fitted together (partial pooling needs them all); --strategy
    only selects which are reported. The posterior, with every derived quantity, is written to
    a NetCDF file that `sdebayes ppc`, `contrast` and `report` read.
    """
    from sdebayes._io import check_output_path
    from sdebayes.data import (
        drop_strategies_without_transitions,
        read_trajectories,
        warn_constant_objectives,
    )
    from sdebayes.datasets import paper_sessions_path
    from sdebayes.distributed import is_zarr_store
    from sdebayes.fit import fit, fit_statistics
    from sdebayes.io_netcdf import save_posterior
    from sdebayes.specs import load_spec
    from sdebayes.summary import check_strategies, summarize, summary_tables

    if sampler not in _SAMPLERS:
        raise typer.BadParameter(
            f"{sampler!r} is not one of {', '.join(_SAMPLERS)}", param_hint="--sampler"
        )
    if backend not in ("numba", "jax"):
        raise typer.BadParameter(f"{backend!r} is not one of numba, jax", param_hint="--backend")
    check_ci_prob(ci_prob)
    if discretization not in ("auto", "euler", "exact"):
        raise typer.BadParameter(
            f"{discretization!r} is not one of auto, euler, exact", param_hint="--discretization"
        )
    spec = load_spec(model)
    path = data if data is not None else paper_sessions_path()
    distributed = dask_scheduler is not None or is_zarr_store(path)
    if distributed:
        statistics, description = _distributed_statistics(
            path, parse_objectives(objectives), dask_scheduler
        )
        strategies = list(map(str, statistics["strategy"].to_numpy()))
    else:
        trajectories = read_trajectories(path, objectives=parse_objectives(objectives))
        trajectories = drop_strategies_without_transitions(trajectories, strategy)
        warn_constant_objectives(trajectories)
        strategies = list(dict.fromkeys(trajectories["strategy"].to_numpy()))
    reported = check_strategies(strategies, strategy)
    output = check_output_path(output or _default_output(path, spec.name), reads=(path, model))
    seed = seed if seed is not None else secrets.randbelow(2**31)

    settings = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": seed,
        "sampler": sampler,
        "backend": backend,
        "progressbar": progress_enabled(progress),
        "discretization": discretization,
    }
    with terminal_warnings() as diagnostics:
        if distributed:
            tree = fit_statistics(
                statistics,
                description,
                spec,
                **settings,  # type: ignore[arg-type]
            )
        else:
            tree = fit(trajectories, spec, **settings)  # type: ignore[arg-type]
        save_posterior(tree, output)
        summary = summarize(tree, strategies=reported, ci_prob=ci_prob)
    summary["output"] = str(output)
    summary["seed"] = seed

    if json_output:
        echo_json(summary)
    else:
        console = Console(soft_wrap=False)
        for table in summary_tables(summary):
            console.print(table)
        console.print(f"Posterior written to {output} (seed {seed}).")
    if strict and diagnostics:
        raise typer.Exit(EXIT_DIAGNOSTICS)


def _distributed_statistics(
    path: Path, objectives: list[str] | None, address: str | None
) -> tuple[Any, Any]:
    """Reduce partitioned data to sufficient statistics, on the scheduler at ``address``."""
    from sdebayes.distributed import connect, distributed_statistics

    if address is None:
        return distributed_statistics(path, objectives)
    with connect(address) as client:
        return distributed_statistics(path, objectives, client=client)


def _default_output(data: Path, model_name: str) -> Path:
    from sdebayes.exceptions import OutputError

    directory = Path("results")
    try:
        directory.mkdir(exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"--output: the default directory {directory.absolute()} cannot be created "
            f"({err.strerror or err}); pass --output PATH"
        ) from err
    return directory / f"{data.stem}-{model_name}.nc"
