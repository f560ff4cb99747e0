"""``sdebayes compare``: PSIS-LOO comparison of several models fitted to the same data."""

from __future__ import annotations

import contextlib
import logging
import secrets
import warnings
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sdebayes.cli._app import app, fail, progress_enabled
from sdebayes.cli._common import (
    DataArgument,
    ObjectivesOption,
    echo_json,
    parse_objectives,
    terminal_warnings,
)

__all__ = ["compare"]

logger = logging.getLogger(__name__)


@app.command()
def compare(
    data: DataArgument = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME|TOML",
            help=(
                "Model to fit and compare; repeat for each (at least two). Default: the three "
                "bundled models, hierarchical, pooled and unpooled."
            ),
            show_default=False,
        ),
    ] = None,
    objectives: ObjectivesOption = None,
    unit: Annotated[
        str,
        typer.Option(
            metavar="session|transition",
            help=(
                "Held-out unit: a whole session (its changes given its first version), or a "
                "single transition."
            ),
        ),
    ] = "session",
    draws: Annotated[
        int, typer.Option(min=1, metavar="N", help="Posterior draws per chain, after tuning.")
    ] = 1000,
    tune: Annotated[
        int, typer.Option(min=1, metavar="N", help="Tuning iterations per chain.")
    ] = 1000,
    chains: Annotated[int, typer.Option(min=1, metavar="N", help="Chains per fit.")] = 4,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="N",
            help="Random seed of every fit. Default: a fresh one, reported in the output.",
            show_default=False,
        ),
    ] = None,
    discretization: Annotated[
        str,
        typer.Option(
            metavar="auto|euler|exact",
            help="Transition density, as for `sdebayes sample`.",
        ),
    ] = "auto",
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of tables.")
    ] = False,
    progress: Annotated[
        bool, typer.Option(help="Show the sampler's progress bar (only on a terminal).")
    ] = True,
) -> None:
    """Compare models by PSIS-LOO: expected log predictive density of held-out sessions.

    Every model is fitted to DATA; the log density of each session's changes (or of each
    transition, with --unit transition) is computed for every posterior draw, and ArviZ's
    PSIS-LOO estimates the leave-one-out predictive density. The table ranks the models by
    elpd; elpd_diff is the difference to the best with its standard error dse. A warning
    names the models whose Pareto k is high for some held-out units: their estimates are
    then unreliable. See docs/validation.md.
    """
    from sdebayes.compare import UNITS, compare_models
    from sdebayes.data import read_trajectories
    from sdebayes.datasets import paper_sessions_path
    from sdebayes.fit import fit
    from sdebayes.specs import MODEL_NAMES, load_spec

    if unit not in UNITS:
        raise typer.BadParameter(f"{unit!r} is not one of {', '.join(UNITS)}", param_hint="--unit")
    if discretization not in ("auto", "euler", "exact"):
        raise typer.BadParameter(
            f"{discretization!r} is not one of auto, euler, exact", param_hint="--discretization"
        )
    models = list(model) if model else list(MODEL_NAMES)
    if len(models) < 2:
        fail(f"compare needs at least two models; got {len(models)}: pass --model twice or more")
    specs = [load_spec(name) for name in models]
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            fail(f"models are named {name!r} twice; give each model file its own [model] name")
    path = data if data is not None else paper_sessions_path()
    trajectories = read_trajectories(path, objectives=parse_objectives(objectives))
    seed = seed if seed is not None else secrets.randbelow(2**31)

    fits = {}
    with terminal_warnings():
        for spec in specs:
            logger.info("fitting %s", spec.name)
            with _warnings_naming(spec.name):
                fits[spec.name] = fit(
                    trajectories,
                    spec,
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    random_seed=seed,
                    progressbar=progress_enabled(progress),
                    discretization=discretization,  # type: ignore[arg-type]
                )
        document = compare_models(fits, unit=unit)  # type: ignore[arg-type]
    document.update(data=str(path), seed=seed, discretization=_discretizations(fits))

    if json_output:
        echo_json(document)
        return
    console = Console(soft_wrap=False, width=max(Console().width, 110))
    console.print(_ranking_table(document))
    console.print(
        "elpd: expected log predictive density of a held-out "
        f"{unit} (sum over {document['n_units']}); dse: standard error of elpd_diff; "
        "k: largest Pareto k, with the number above the threshold."
    )


@contextlib.contextmanager
def _warnings_naming(model: str) -> Iterator[None]:
    """Re-issue the warnings of one model's fit with the model's name in front.

    Several fits warn in the same words (a high R-hat, divergences); the name says which.
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        for item in caught:
            warnings.warn(f"{model} model: {item.message}", item.category, stacklevel=1)


def _discretizations(fits: dict[str, Any]) -> dict[str, str]:
    return {name: str(tree.attrs["discretization"]) for name, tree in fits.items()}


def _ranking_table(document: dict[str, Any]) -> Table:
    table = Table(
        title=f"PSIS-LOO over held-out {document['unit']}s ({document['data']})",
        title_justify="left",
    )
    for column in ("rank", "model", "elpd", "se", "elpd_diff", "dse", "p_loo", "weight", "k"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in document["ranking"]:
        model = document["models"][row["model"]]
        table.add_row(
            str(row["rank"]),
            row["model"],
            f"{row['elpd']:.1f}",
            f"{row['se']:.1f}",
            f"{row['elpd_diff']:.1f}",
            f"{row['dse']:.1f}",
            f"{row['p']:.1f}",
            f"{row['weight']:.2f}",
            f"{_format(model['pareto_k_max'])} "
            f"({model['n_high_pareto_k']} > {model['good_k']:.2f})",
        )
    return table


def _format(value: float | None) -> str:
    return "nan" if value is None else f"{value:.2f}"
