"""The ``sdebayes`` command line: a thin layer over the public functions of the package.

Each command lives in a module of its own and registers itself on the shared Typer
application in :mod:`sdebayes.cli._app`; importing this package registers them all.
"""

from __future__ import annotations

# Importing the command modules registers their commands on ``app``.
from sdebayes.cli import (  # noqa: F401
    baseline,
    compare,
    contrast,
    ppc,
    report,
    sample,
    sbc,
    score,
    simulate,
)
from sdebayes.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Run the sdebayes command line (the ``sdebayes`` console script)."""
    app()
