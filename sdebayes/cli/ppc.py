"""``sdebayes ppc``: posterior predictive checks of a fit, with figures and p-values."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from sdebayes.cli._app import app
from sdebayes.cli._common import CiProbOption, check_ci_prob, echo_json, terminal_warnings

if TYPE_CHECKING:
    from sdebayes.plots import Format
    from sdebayes.ppc import PosteriorPredictiveCheck

__all__ = ["PosteriorArgument", "ppc"]

logger = logging.getLogger(__name__)

SCHEMA = "sdebayes.ppc/1"

PosteriorArgument = Annotated[
    Path,
    typer.Argument(
        help="Posterior NetCDF file written by `sdebayes sample`.",
        metavar="POSTERIOR.nc",
        show_default=False,
    ),
]


@app.command()
def ppc(
    posterior: PosteriorArgument,
    data: Annotated[
        Path | None,
        typer.Argument(
            help=(
                "Trajectory table to check (CSV or Parquet, the posterior's objective "
                "columns). Default: the data the posterior was fitted to, stored in the file."
            ),
            metavar="DATA",
            show_default=False,
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            metavar="DIR",
            help="Directory for the figures and ppc.json (created if missing). Default: "
            "<posterior name>-ppc beside the posterior.",
            show_default=False,
        ),
    ] = None,
    draws: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="Posterior draws to replicate the data from."),
    ] = 300,
    seed: Annotated[
        int, typer.Option(min=0, metavar="N", help="Seed of the thinning and the replicates.")
    ] = 0,
    svg: Annotated[bool, typer.Option("--svg", help="Also write every figure as SVG.")] = False,
    ci_prob: CiProbOption = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the JSON summary (statistics and figures) on stdout."),
    ] = False,
) -> None:
    """Check a posterior against its data by replicating every session from the posterior.

    Each observed session is replicated from its observed first version over its observed
    times, for a few hundred posterior draws. Test statistics (mean and sd of one-step
    changes, interference, lag-1 residual autocorrelation, final-step quantiles and sd, PIT
    of the final scores) are compared; p = P(T(replicated) >= T(observed)), near 0 or 1
    flags a statistic the model does not reproduce. Figures and ppc.json go to --output-dir.
    """
    from sdebayes.data import read_trajectories
    from sdebayes.io_netcdf import load_posterior
    from sdebayes.plots import prepare_directory, write_figures
    from sdebayes.ppc import posterior_predictive_check

    check_ci_prob(ci_prob)
    tree = load_posterior(posterior, groups=("posterior", "observed_data"))
    trajectories = None
    if data is not None:
        objectives = list(map(str, tree["posterior"]["objective"].to_numpy()))
        trajectories = read_trajectories(data, objectives=objectives)
    directory = prepare_directory(output_dir or _default_directory(posterior))

    with terminal_warnings():
        check = posterior_predictive_check(
            tree, trajectories, n_draws=draws, random_seed=seed, ci_prob=ci_prob
        )
        formats: tuple[Format, ...] = ("png", "svg") if svg else ("png",)
        figures = write_figures(tree, check, directory, formats=formats, ci_prob=ci_prob)
    document = {
        "schema": SCHEMA,
        "posterior": str(posterior),
        "data": str(data) if data is not None else tree.attrs.get("data_source", ""),
        "draws": int(check.replicates.sizes["draw"]),
        "seed": seed,
        "ci_prob": check.ci_prob,
        "statistics": check.rows(),
        "figures": [str(path) for path in figures],
    }
    _write_json(document, directory / "ppc.json")

    if json_output:
        echo_json(document)
        return
    console = Console(soft_wrap=False, width=max(Console().width, 100))
    console.print(_table(check))
    extreme = check.extreme()
    defined = sum(row["p_value"] is not None for row in check.rows())
    console.print(
        f"{len(extreme)} of {defined} p-values are extreme (outside [0.025, 0.975]; "
        f"final_pit below 0.05); about {0.05 * defined:.0f} would be by chance."
    )
    console.print(f"{len(figures)} figures and ppc.json written to {directory}.")


def _default_directory(posterior: Path) -> Path:
    return posterior.with_name(f"{posterior.stem}-ppc")


def _write_json(document: dict[str, object], path: Path) -> None:
    from sdebayes._io import atomic_path, check_output_path

    path = check_output_path(path, option="--output-dir")
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(document, indent=2, allow_nan=False), encoding="utf-8")


def _table(check: PosteriorPredictiveCheck) -> Table:
    flagged = {(r["strategy"], r["objective"], r["name"]) for r in check.extreme()}
    table = Table(
        title=f"Posterior predictive checks ({check.replicates.sizes['draw']} draws): "
        "p = P(T(replicated) >= T(observed))",
        title_justify="left",
    )
    for column, justify in (
        ("strategy", "left"),
        ("statistic", "left"),
        ("objective", "left"),
        ("observed", "right"),
        ("p-value", "right"),
        ("", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    previous = None
    for row in check.rows():
        if previous is not None and (row["strategy"], row["name"]) != previous:
            table.add_section()
        previous = (row["strategy"], row["name"])
        observed = "undefined" if row["observed"] is None else f"{row['observed']:.3f}"
        p_value = "undefined" if row["p_value"] is None else f"{row['p_value']:.2f}"
        mark = "extreme" if (row["strategy"], row["objective"], row["name"]) in flagged else ""
        table.add_row(row["strategy"], row["name"], row["objective"], observed, p_value, mark)
    return table
