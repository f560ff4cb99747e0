"""Pieces shared by several commands: data and interval options, terminal warnings, JSON output."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from sdebayes.exceptions import DiagnosticWarning

__all__ = [
    "CiProbOption",
    "DataArgument",
    "ObjectivesOption",
    "StrategyOption",
    "check_ci_prob",
    "echo_json",
    "ignore_pytensor_blas_note",
    "parse_objectives",
    "terminal_warnings",
]

DataArgument = Annotated[
    Path | None,
    typer.Argument(
        help=(
            "Trajectory table (CSV or Parquet) with columns session, strategy, step and one "
            "numeric column per objective. Default: the bundled paper-calibrated data."
        ),
        show_default=False,
        dir_okay=True,
        metavar="DATA",
    ),
]

StrategyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--strategy",
        "-s",
        help="Strategy to report; repeat for several. Default: every strategy.",
        show_default=False,
        metavar="NAME",
    ),
]

ObjectivesOption = Annotated[
    str | None,
    typer.Option(
        "--objectives",
        help=(
            "Comma-separated objective columns to use, in this order (e.g. "
            "security,efficiency). Default: every column except session, strategy, step, "
            "time and parse_ok."
        ),
        show_default=False,
        metavar="A,B,...",
    ),
]

CiProbOption = Annotated[
    float | None,
    typer.Option(
        metavar="P",
        help="Probability of the intervals. Default: ArviZ's stats.ci_prob (0.89).",
        show_default=False,
    ),
]


def check_ci_prob(ci_prob: float | None) -> None:
    """Reject a ``--ci-prob`` outside (0, 1) with a usage error naming the value."""
    if ci_prob is not None and not 0 < ci_prob < 1:
        raise typer.BadParameter(f"{ci_prob!r} must lie between 0 and 1", param_hint="--ci-prob")


def parse_objectives(text: str | None) -> list[str] | None:
    """Split ``--objectives a,b,c``; ``None`` keeps the default (every objective column)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise typer.BadParameter(
            f"{text!r} names no column; give e.g. --objectives security,efficiency",
            param_hint="--objectives",
        )
    return names


def echo_json(document: Any) -> None:
    """Print a JSON document on stdout (NaN written as ``null``, never as ``NaN``)."""
    typer.echo(json.dumps(_finite(document), indent=2, allow_nan=False))


def _finite(value: Any) -> Any:
    """Replace NaN and infinite floats, at any depth, by ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def ignore_pytensor_blas_note() -> None:
    """Drop PyTensor's warning that it found no BLAS library (for its unused C backend)."""
    warnings.filterwarnings(
        "ignore", message="PyTensor could not link to a BLAS installation", category=UserWarning
    )


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    kind = "diagnostic" if issubclass(category, DiagnosticWarning) else "warning"
    print(f"sdebayes: {kind}: {message}", file=sys.stderr)


@contextlib.contextmanager
def terminal_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Show warnings as one line each on stderr and collect the diagnostic ones.

    Yields
    ------
    list of warnings.WarningMessage
        Filled with the :class:`DiagnosticWarning` instances raised inside the block.
    """
    collected: list[warnings.WarningMessage] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.simplefilter("always", DiagnosticWarning)
        ignore_pytensor_blas_note()
        try:
            yield collected
        finally:
            for item in caught:
                if issubclass(item.category, DiagnosticWarning):
                    collected.append(item)
                    _show_warning(item.message, item.category)
                elif issubclass(item.category, UserWarning | RuntimeWarning):
                    _show_warning(item.message, item.category)
