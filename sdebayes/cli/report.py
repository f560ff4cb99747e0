"""``sdebayes report``: one self-contained HTML page about a fit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from sdebayes.cli._app import app
from sdebayes.cli._common import CiProbOption, check_ci_prob, terminal_warnings
from sdebayes.cli.ppc import PosteriorArgument

__all__ = ["report"]

logger = logging.getLogger(__name__)


@app.command()
def report(
    posterior: PosteriorArgument,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="HTML file to write. Default: <posterior name>-report.html beside it.",
            show_default=False,
        ),
    ] = None,
    draws: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="Posterior draws replicated for the checks."),
    ] = 300,
    seed: Annotated[
        int, typer.Option(min=0, metavar="N", help="Seed of the posterior predictive checks.")
    ] = 0,
    ci_prob: CiProbOption = None,
) -> None:
    """Write an HTML report: summaries, diagnostics, contrasts, checks and every figure.

    The page embeds its figures and styles and loads nothing from the network, so it reads
    offline. The posterior predictive checks are run on the data stored in the posterior.
    """
    from sdebayes._io import check_output_path
    from sdebayes.io_netcdf import load_posterior
    from sdebayes.report import write_report

    check_ci_prob(ci_prob)
    tree = load_posterior(posterior, groups=("posterior", "observed_data", "constant_data"))
    output = check_output_path(
        output or posterior.with_name(f"{posterior.stem}-report.html"), reads=(posterior,)
    )
    with terminal_warnings():
        path = write_report(tree, output, n_draws=draws, random_seed=seed, ci_prob=ci_prob)
    typer.echo(f"Report written to {path}.")
