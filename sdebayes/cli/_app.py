"""The Typer application every command registers on, and how errors reach the terminal.

Bad input is reported as one line on stderr, ``sdebayes: error: <message>``, with exit code 2
and no traceback; ``--verbose`` (anywhere on the command line) adds the traceback and debug
logging. Results go to stdout, progress and log messages to stderr, so ``--json`` output can
be piped.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import click
import typer
from typer.core import TyperGroup

from sdebayes.exceptions import SdebayesError

__all__ = ["EXIT_DIAGNOSTICS", "EXIT_USAGE", "app", "fail", "progress_enabled"]

logger = logging.getLogger(__name__)

EXIT_USAGE = 2
"""Exit code for bad input or usage."""

EXIT_DIAGNOSTICS = 3
"""Exit code of ``--strict`` runs whose sampling diagnostics fail their thresholds."""

_VERBOSE_FLAGS = ("--verbose", "-v")


class _Group(TyperGroup):
    """Command group that accepts ``--verbose`` anywhere and turns our errors into one line."""

    verbose = False

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Take ``--verbose`` out of the arguments wherever it appears."""
        if any(flag in args for flag in _VERBOSE_FLAGS):
            _Group.verbose = True
            args = [arg for arg in args if arg not in _VERBOSE_FLAGS]
        _configure_logging(_Group.verbose)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; report :class:`SdebayesError` and interrupts without a traceback.

        BLAS is limited to one thread: sdebayes works on many tiny matrices, for which
        OpenBLAS threads cost far more than they save (a 3 x 3 matrix exponential took
        3.7 ms with two threads on a busy 2-core machine and 0.03 ms with one).
        """
        from threadpoolctl import threadpool_limits

        try:
            with threadpool_limits(limits=1, user_api="blas"):
                return super().invoke(ctx)
        except SdebayesError as err:
            _report(str(err))
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            _report("interrupted; no output was written")
            ctx.exit(130)


def _report(message: str) -> None:
    if _Group.verbose:
        traceback.print_exc(file=sys.stderr)
    click.echo(f"sdebayes: error: {message}", err=True)


def _configure_logging(verbose: bool) -> None:
    root = logging.getLogger("sdebayes")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(getattr(handler, "_sdebayes", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._sdebayes = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False


def fail(message: str) -> NoReturn:
    """Stop a command with a usage error (exit code 2) whose message names what to fix.

    Parameters
    ----------
    message : str
        One line: what was wrong, the offending value, and how to fix it.
    """
    raise SdebayesError(message)


def progress_enabled(requested: bool = True) -> bool:
    """Whether to draw progress bars: only when asked, on a terminal, and not under CI."""
    return requested and sys.stderr.isatty() and not os.environ.get("CI")


app = typer.Typer(
    cls=_Group,
    name="sdebayes",
    help=(
        "Bayesian analysis of how several objectives evolve while an LLM iterates on a task.\n\n"
        "Scores of successive program versions are modelled as a linear stochastic "
        "differential equation per interaction strategy; every quantity (eigenvalues, "
        "convergence rates, equilibria, interference) comes with credible intervals.\n\n"
        "Add --verbose anywhere for debug logging and tracebacks."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command on :data:`app` (a thin alias kept for the command modules)."""
    return app.command(*args, **kwargs)
