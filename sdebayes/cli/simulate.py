"""``sdebayes simulate``: trajectories from the linear SDE with known parameters."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from sdebayes.cli._app import app

__all__ = ["simulate"]

logger = logging.getLogger(__name__)


@app.command()
def simulate(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="CSV file for the simulated trajectory table."),
    ],
    preset: Annotated[
        str, typer.Option(help="Scenario with known dynamics; 'paper' follows arXiv 2510.10739.")
    ] = "paper",
    sessions_per_strategy: Annotated[
        int, typer.Option(min=1, help="Sessions simulated for each strategy.")
    ] = 100,
    steps: Annotated[
        int, typer.Option(min=1, help="Refinement rounds per session (versions = steps + 1).")
    ] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Random seed of the simulation.")] = 0,
    irregular_time: Annotated[
        bool,
        typer.Option(
            "--irregular-time",
            help=(
                "Log versions at random gaps (whole numbers of rounds, geometric with mean "
                "--mean-dt) and simulate the exact transition over each gap; adds a time column."
            ),
        ),
    ] = False,
    mean_dt: Annotated[
        float,
        typer.Option(min=1.0, metavar="D", help="Mean gap between logged versions."),
    ] = 2.0,
    truth: Annotated[
        Path | None,
        typer.Option(
            help="Also write the true parameters and derived quantities as JSON.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Simulate sessions of every strategy of a scenario with known dynamics.

    By default every round is logged and follows the Euler-Maruyama transition (dt = 1),
    the model `sdebayes sample` fits by default; --irregular-time skips rounds at random and
    simulates the exact continuous-time process instead.

    The table has the columns session, strategy, step and one per objective, ready for
    `sdebayes sample`. Fitting simulated data with known truth is how sdebayes checks that
    its intervals can be trusted.
    """
    from sdebayes._io import atomic_path, check_output_path
    from sdebayes.exceptions import OutputError
    from sdebayes.simulate import SCENARIOS, simulate_sessions, truth_document

    if preset not in SCENARIOS:
        raise typer.BadParameter(
            f"{preset!r} is not a known scenario; available: {', '.join(SCENARIOS)}",
            param_hint="--preset",
        )
    output = check_output_path(output)
    truth = check_output_path(truth, option="--truth") if truth is not None else None
    if truth is not None and truth.resolve() == output.resolve():
        raise OutputError(f"--truth {truth}: must differ from --output; choose another path")

    scenario = SCENARIOS[preset]()
    table = simulate_sessions(
        scenario,
        sessions_per_strategy,
        steps,
        random_seed=seed,
        mean_dt=mean_dt if irregular_time else None,
    )
    table = table.round(6)  # the truth is evaluated on exactly the numbers written
    with atomic_path(output) as temporary:
        table.to_csv(temporary, index=False)
    if truth is not None:
        document = truth_document(scenario, table, random_seed=seed)
        with atomic_path(truth) as temporary:
            temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

    logger.info(
        "wrote %d sessions (%d versions) to %s%s",
        sessions_per_strategy * len(scenario.strategies),
        len(table),
        output,
        f" and the truth to {truth}" if truth else "",
    )
