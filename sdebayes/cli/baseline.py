"""``sdebayes baseline``: the published least-squares method with bootstrap intervals."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sdebayes.cli._app import app
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

__all__ = ["baseline"]

logger = logging.getLogger(__name__)


@app.command()
def baseline(
    data: DataArgument = None,
    strategy: StrategyOption = None,
    objectives: ObjectivesOption = None,
    n_bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap",
            "-b",
            min=1,
            help="Bootstrap resamples of sessions (within each strategy) for the intervals.",
        ),
    ] = 1000,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seed of the bootstrap. Default: a fresh one, recorded in the output.",
            show_default=False,
        ),
    ] = None,
    ci_prob: CiProbOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary instead of tables.")
    ] = False,
) -> None:
    """Fit each strategy by ordinary least squares, as the published study does.

    One-step changes are regressed on [scores, 1], pooling the transitions of all sessions of
    a strategy. The output has the derived quantities of `sdebayes sample` plus the observed
    interference matrix; intervals come from resampling whole sessions. --json writes the
    layout of `sample --json`, with the least-squares estimate as "mean".
    """
    from sdebayes.baseline import bootstrap, least_squares, summarize_baseline
    from sdebayes.data import drop_strategies_without_transitions, read_trajectories
    from sdebayes.datasets import paper_sessions_path
    from sdebayes.summary import check_strategies

    check_ci_prob(ci_prob)
    path = data if data is not None else paper_sessions_path()
    trajectories = read_trajectories(path, objectives=parse_objectives(objectives))
    trajectories = drop_strategies_without_transitions(trajectories, strategy)
    reported = check_strategies(list(dict.fromkeys(trajectories["strategy"].to_numpy())), strategy)
    seed = seed if seed is not None else secrets.randbelow(2**31)

    with terminal_warnings():
        estimate = least_squares(trajectories)
        replicates = bootstrap(trajectories, n_bootstrap, random_seed=seed)
        summary = summarize_baseline(estimate, replicates, strategies=reported, ci_prob=ci_prob)
    summary["seed"] = seed

    if json_output:
        echo_json(summary)
        return
    console = Console(soft_wrap=False)
    percent = f"{100 * summary['ci_prob']:g}%"
    for name, block in summary["strategies"].items():
        console.print(_strategy_table(name, block, summary["data"]["objectives"], percent))
    used = summary["bootstrap"]["used_resamples"]
    console.print(
        f"Intervals: {percent} percentiles of {used} bootstrap resamples of sessions "
        f"(seed {seed}); the estimate column is least squares on all the data; interference "
        "is the correlation of the observed one-step changes."
    )


def _strategy_table(name: str, block: dict[str, Any], objectives: list[str], percent: str) -> Table:
    from sdebayes.summary import add_interval_rows

    table = Table(
        title=f"Strategy {name}: least squares and {percent} bootstrap interval",
        title_justify="left",
    )
    table.add_column("quantity")
    for column in ("estimate", "lower", "upper"):
        table.add_column(column, justify="right")

    add_interval_rows(
        table,
        block,
        objectives,
        ("mean", "lower", "upper"),
        stability_label="discrete stability  |eig(I + A dt)|",
    )

    table.add_section()
    table.add_row("mode of the estimate", block["mode"], "", "")
    for mode, share in block["mode_probabilities"].items():
        table.add_row(f"share of resamples with mode = {mode}", f"{share:.3f}", "", "")
    pareto = "yes" if block["pareto_optimal"] else "no"
    table.add_row("equilibrium Pareto-optimal", pareto, "", "")
    table.add_row("share of resamples Pareto-optimal", f"{block['pareto_probability']:.3f}", "", "")
    return table
