"""The Typer application every command registers on, and how errors reach the terminal.

Bad input and bad usage (an unknown option, a value out of range) are reported as one line on
stderr, ``sdebayes: error: <message>``, with exit code 2 and no traceback; ``--verbose``
(anywhere on the command line) adds the traceback and debug logging. Warnings are one line
each, ``sdebayes: warning: <message>``. Ctrl-C exits with code 130 and SIGTERM with 143, after
the partial work is discarded, so neither leaves a partial output file. Results go to stdout,
progress and log messages to stderr, so ``--json`` output can be piped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from sdebayes._signals import Terminated, handle_signals, interrupted
from sdebayes.cli._common import ignore_pytensor_blas_note
from sdebayes.exceptions import SdebayesError

if TYPE_CHECKING:  # the installed typer, which ships its own copy of click
    from typer._click.core import Context
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
else:
    try:  # typer >= 0.2x ships its own copy of click
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click.exceptions import NoArgsIsHelpError, UsageError

__all__ = [
    "EXIT_DIAGNOSTICS",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "app",
    "fail",
    "progress_enabled",
]

logger = logging.getLogger(__name__)

EXIT_USAGE = 2
"""Exit code for bad input or usage."""

EXIT_DIAGNOSTICS = 3
"""Exit code of ``--strict`` runs whose sampling diagnostics fail their thresholds."""

EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (SIGINT), as shells report it."""

EXIT_TERMINATED = 143
"""Exit code after SIGTERM (a plain ``kill``), as shells report it."""

_VERBOSE_FLAGS = ("--verbose", "-v")


_COMMAND_ORDER = (
    "simulate",
    "score",
    "sample",
    "baseline",
    "ppc",
    "contrast",
    "report",
    "compare",
    "sbc",
)
"""Order of ``sdebayes --help``: the order of a workflow, from data to checks."""


class _Group(TyperGroup):
    """Command group that accepts ``--verbose`` anywhere and turns our errors into one line."""

    verbose = False

    def list_commands(self, ctx: Context) -> list[str]:
        """List the commands in workflow order (:data:`_COMMAND_ORDER`), then any others."""
        known = {name: rank for rank, name in enumerate(_COMMAND_ORDER)}
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: (known.get(name, len(known)), name))

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        """Take ``--verbose`` out of the arguments wherever it appears."""
        # set on every call: one process may run several commands (tests, notebooks)
        _Group.verbose = any(flag in args for flag in _VERBOSE_FLAGS)
        args = [arg for arg in args if arg not in _VERBOSE_FLAGS]
        _configure_logging(_Group.verbose)
        try:
            return super().parse_args(ctx, args)
        except NoArgsIsHelpError:
            raise
        except UsageError as err:  # an unknown option before the command name
            _report(_usage_message(err))
            raise typer.Exit(EXIT_USAGE) from err

    def invoke(self, ctx: Context) -> Any:
        """Run the command; report :class:`SdebayesError` and interrupts without a traceback.

        BLAS is limited to one thread: sdebayes works on many tiny matrices, for which
        OpenBLAS threads cost far more than they save (a 3 x 3 matrix exponential took
        3.7 ms with two threads on a busy 2-core machine and 0.03 ms with one).
        """
        from threadpoolctl import threadpool_limits

        try:
            with (
                handle_signals(),
                _one_line_warnings(),
                threadpool_limits(limits=1, user_api="blas"),
            ):
                return super().invoke(ctx)
        except SdebayesError as err:
            _report(str(err))
            ctx.exit(EXIT_USAGE)
        except NoArgsIsHelpError:
            raise
        except UsageError as err:
            _report(_usage_message(err))
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt as err:
            _report_interrupt(ctx, err)
        except Exception as err:
            if interrupted() is None or isinstance(err, typer.Exit):
                raise
            # A library caught the interrupt and went on with partial results, which then
            # failed (nutpie returns its draws so far, padded with NaN): report the interrupt.
            _report_interrupt(ctx, err)


def _report_interrupt(ctx: Context, err: BaseException) -> NoReturn:
    terminated = isinstance(err, Terminated) or interrupted() == signal.SIGTERM
    _report(f"{'terminated' if terminated else 'interrupted'}; no output was written")
    ctx.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Print each user or runtime warning as one line, ``sdebayes: warning: <message>``.

    Other categories (deprecations inside dependencies) concern developers, not users; they
    go to the debug log. PyTensor's note that it found no BLAS library is dropped: it
    concerns PyTensor's C backend, which sdebayes does not use (it compiles with Numba or
    JAX), and its advice (reinstall with conda) does not apply.
    """

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, UserWarning | RuntimeWarning):
            typer.echo(f"sdebayes: warning: {message}", err=True)
        else:
            logger.debug("%s: %s", category.__name__, message)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        ignore_pytensor_blas_note()
        warnings.showwarning = show
        yield


def _usage_message(err: UsageError) -> str:
    """One line for a usage error: click's message, the offending value, where to get help."""
    message = " ".join(err.format_message().split()).rstrip(".")
    errors = getattr(err.__cause__, "errors", None)  # typer validates values with pydantic
    if callable(errors):
        with contextlib.suppress(Exception):
            message += f" (got {errors()[0]['input']!r})"
    if err.ctx is not None:
        message += f"; see '{err.ctx.command_path} --help'"
    return message


def _report(message: str) -> None:
    if _Group.verbose:
        traceback.print_exc(file=sys.stderr)
    typer.echo(f"sdebayes: error: {message}", err=True)


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


def _print_version(value: bool) -> None:
    if value:
        from sdebayes import __version__

        typer.echo(f"sdebayes {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version of sdebayes and exit.",
        ),
    ] = False,
) -> None:
    """Options that apply before any command."""


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command on :data:`app` (a thin alias kept for the command modules)."""
    return app.command(*args, **kwargs)
