"""``sdebayes contrast``: posterior differences between two strategies."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console

from sdebayes.cli._app import app
from sdebayes.cli._common import CiProbOption, check_ci_prob, echo_json
from sdebayes.cli.ppc import PosteriorArgument

__all__ = ["contrast"]

logger = logging.getLogger(__name__)


@app.command()
def contrast(
    posterior: PosteriorArgument,
    first: Annotated[str, typer.Argument(metavar="A", help="First strategy.")],
    second: Annotated[str, typer.Argument(metavar="B", help="Second strategy.")],
    ci_prob: CiProbOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of a table.")
    ] = False,
) -> None:
    """Compare strategies A and B: the posterior of A - B, with P(A > B).

    For the convergence rate, every equilibrium and every interference entry: posterior
    means of A and B, the mean, median and equal-tailed interval of the difference A - B
    (draw by draw, so the correlation between strategies is kept) and P(A > B).
    """
    from sdebayes.contrast import contrast as contrast_strategies
    from sdebayes.contrast import contrast_table
    from sdebayes.io_netcdf import load_posterior

    check_ci_prob(ci_prob)
    tree = load_posterior(posterior)
    result = contrast_strategies(tree, first, second, ci_prob=ci_prob)
    result["posterior"] = str(posterior)
    if json_output:
        echo_json(result)
    else:
        Console(soft_wrap=False, width=max(Console().width, 120)).print(contrast_table(result))
