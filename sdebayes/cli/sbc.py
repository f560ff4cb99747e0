"""``sdebayes sbc``: simulation-based calibration of the model and sampler."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sdebayes.cli._app import app
from sdebayes.cli._common import echo_json

__all__ = ["sbc"]

logger = logging.getLogger(__name__)

MIN_PLOTTED_SIMULATIONS = 2
"""Fewest finished simulations whose rank ECDFs can be drawn."""


def _names(text: str, option: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names or len(set(names)) != len(names):
        raise typer.BadParameter(
            f"{text!r} must be distinct comma-separated names, e.g. A,B", param_hint=option
        )
    return names


@app.command()
def sbc(
    simulations: Annotated[
        int, typer.Option(min=1, metavar="N", help="Datasets simulated from the prior and fitted.")
    ],
    sessions_per_strategy: Annotated[
        int, typer.Option(min=1, metavar="K", help="Sessions of every strategy per dataset.")
    ],
    steps: Annotated[
        int, typer.Option(min=1, metavar="T", help="Transitions per session (versions = T + 1).")
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME|TOML",
            help="Bundled model (hierarchical, pooled, unpooled) or path of a model TOML file.",
        ),
    ] = "hierarchical",
    seed: Annotated[
        int, typer.Option(min=0, metavar="S", help="Master seed; simulation i derives its own.")
    ] = 0,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="RESULT.nc",
            help=(
                "Result file (NetCDF). Finished simulations are kept in RESULT.nc.work and "
                "skipped when the command is run again. Default: results/sbc-<model>.nc."
            ),
            show_default=False,
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            metavar="FIGURE",
            help="Also draw the rank ECDF differences with simultaneous bands (PNG, SVG, PDF).",
            show_default=False,
        ),
    ] = None,
    draws: Annotated[
        int, typer.Option(min=1, metavar="N", help="Posterior draws per chain and fit.")
    ] = 1000,
    tune: Annotated[int, typer.Option(min=1, metavar="N", help="Tuning iterations per chain.")] = (
        1000
    ),
    chains: Annotated[int, typer.Option(min=1, metavar="N", help="Chains per fit.")] = 2,
    thin_to: Annotated[
        int,
        typer.Option(
            min=2, metavar="L", help="Thinned posterior draws the true value is ranked among."
        ),
    ] = 100,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help=(
                "Processes fitting at once (each compiles the model once). nutpie already runs "
                "the chains of a fit in parallel threads."
            ),
        ),
    ] = 1,
    strategies: Annotated[
        str, typer.Option(metavar="A,B,...", help="Strategy names of the simulated datasets.")
    ] = "EF,SF,FF,AI",
    objectives: Annotated[
        str, typer.Option(metavar="A,B,...", help="Objective names of the simulated datasets.")
    ] = "security,efficiency,functionality",
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of tables.")
    ] = False,
) -> None:
    """Check the calibration of the inference by simulation-based calibration (SBC).

    Each simulation draws parameters from the model's priors, simulates sessions from them
    (standardised units, starting states N(0, I), Euler steps with dt = 1), fits the model
    without standardising or centring (so the fitted model is the generative one) and ranks
    every true quantity among thinned posterior draws. Calibrated inference gives uniform
    ranks; the uniformity p-value of each quantity and whether its rank ECDF leaves the
    simultaneous 99% band are reported. See docs/validation.md.
    """
    from sdebayes._io import check_output_path
    from sdebayes.sbc import (
        SBCSettings,
        check_plot_path,
        plot_sbc,
        run_sbc,
        save_sbc_plot,
        summarize_sbc,
    )
    from sdebayes.specs import load_spec

    spec = load_spec(model)
    if thin_to > chains * draws or thin_to < chains:
        raise typer.BadParameter(
            f"{thin_to} must lie between --chains ({chains}) and --chains x --draws "
            f"({chains * draws})",
            param_hint="--thin-to",
        )
    settings = SBCSettings(
        spec,
        simulations=simulations,
        sessions_per_strategy=sessions_per_strategy,
        steps=steps,
        seed=seed,
        strategies=_names(strategies, "--strategies"),
        objectives=_names(objectives, "--objectives"),
        draws=draws,
        tune=tune,
        chains=chains,
        thin_to=thin_to,
    )
    output = check_output_path(output or _default_output(spec.name), reads=(model,))
    if plot is not None:
        plot = check_plot_path(plot, reads=(output, model))
        if simulations < MIN_PLOTTED_SIMULATIONS:
            raise typer.BadParameter(
                f"--plot needs at least {MIN_PLOTTED_SIMULATIONS} simulations to draw rank "
                f"ECDFs (got {simulations})",
                param_hint="--simulations",
            )

    def progress(done: int, total: int, summary: dict[str, Any]) -> None:
        status = summary["status"]
        detail = f"in {summary['seconds']:.1f} s" if status == "ok" else summary.get("error")
        logger.info(
            "simulation %d (%d of %d): %s %s", summary["index"], done, total, status, detail
        )

    fit_logger = logging.getLogger("sdebayes.fit")
    previous = fit_logger.level
    if previous < logging.WARNING and not logging.getLogger("sdebayes").isEnabledFor(logging.DEBUG):
        fit_logger.setLevel(logging.WARNING)  # one line per simulation is enough
    try:
        result = run_sbc(settings, output, workers=workers, on_progress=progress)
    finally:
        fit_logger.setLevel(previous)
    finished = int(result["ok"].sum())
    if plot is not None and finished < MIN_PLOTTED_SIMULATIONS:
        warnings.warn(
            f"only {finished} simulation(s) finished; --plot {plot} needs at least "
            f"{MIN_PLOTTED_SIMULATIONS}, so no figure was drawn (the result is in {output})",
            stacklevel=1,
        )
        plot = None
    if plot is not None:
        save_sbc_plot(plot_sbc(result), plot)

    document = summarize_sbc(result)
    document["output"] = str(output)
    if plot is not None:
        document["plot"] = str(plot)
    if json_output:
        echo_json(document)
    else:
        console = Console(soft_wrap=False)
        console.print(_variable_table(document))
        console.print(_flagged_table(document))
        console.print(_fits_line(document))
        console.print(f"Result written to {output}.")


def _default_output(model_name: str) -> Path:
    directory = Path("results")
    directory.mkdir(exist_ok=True)
    return directory / f"sbc-{model_name}.nc"


def _variable_table(document: dict[str, Any]) -> Table:
    summary = document["summary"]
    table = Table(
        title=(
            f"SBC of the {document['model']} model: {document['completed']} fits, "
            f"ranks among {document['fits']['thinned_draws']} draws"
        )
    )
    for column in ("variable", "quantities", "min p", "p < 0.05", "outside band"):
        table.add_column(column, justify="left" if column == "variable" else "right")
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, entry in document["quantities"].items():
        groups.setdefault(name.split("[")[0], []).append(entry)
    for variable, entries in groups.items():
        pvalues = [e["uniformity_pvalue"] for e in entries if e["uniformity_pvalue"] is not None]
        table.add_row(
            variable,
            str(len(entries)),
            f"{min(pvalues):.3f}" if pvalues else "-",
            str(sum(p < 0.05 for p in pvalues)),
            str(sum(bool(e["outside_band"]) for e in entries)),
        )
    table.add_row(
        "all",
        str(summary["quantities"]),
        f"{summary['min_pvalue']:.3f}" if summary["min_pvalue"] is not None else "-",
        f"{summary['pvalue_below_0.05']} (~{summary['expected_below_0.05']} by chance)",
        f"{summary['outside_band']} (~{summary['expected_outside_band']} by chance)",
    )
    return table


def _flagged_table(document: dict[str, Any]) -> Table:
    table = Table(title="Quantities with p < 0.01 or outside the band")
    for column in ("quantity", "p", "mean PIT", "50% coverage", "90% coverage"):
        table.add_column(column, justify="left" if column == "quantity" else "right")
    for name, entry in document["quantities"].items():
        pvalue = entry["uniformity_pvalue"]
        if entry["outside_band"] or (pvalue is not None and pvalue < 0.01):
            table.add_row(
                name,
                f"{pvalue:.4f}",
                f"{entry['mean_pit']:.3f}",
                f"{entry['coverage_50']:.2f}",
                f"{entry['coverage_90']:.2f}",
            )
    if not table.row_count:
        table.add_row("none", "", "", "", "")
    return table


def _fits_line(document: dict[str, Any]) -> str:
    fits, exploding = document["fits"], document["exploding"]
    return (
        f"{document['failed']} failed fits; {fits['with_divergences']} with divergences, "
        f"{fits['max_rhat_above_1.01']} with R-hat > 1.01; median {fits['median_seconds']} s "
        f"per simulation. {exploding['count']} datasets exploded (|score| > "
        f"{exploding['threshold']:g}); their ranks are kept."
    )
