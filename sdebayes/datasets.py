"""Datasets bundled with sdebayes.

* ``paper_sessions.csv``: 100 simulated sessions of 10 refinement rounds for each of the four
  strategies of :func:`sdebayes.simulate.paper_scenario`, with ``paper_truth.json`` holding
  the true parameters and derived quantities. Made by
  ``sdebayes simulate --preset paper --sessions-per-strategy 100 --steps 10 --seed 20251012``.
* ``real_sessions.csv`` (when present): scores of real LLM code-refinement traces, written by
  ``sdebayes score``; see ``data/README.md`` in the repository for sources and licences.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sdebayes.exceptions import DataError

__all__ = [
    "DATA_DIR",
    "PAPER_SEED",
    "bundled_path",
    "paper_sessions_path",
    "paper_truth",
    "paper_truth_path",
    "real_sessions_path",
]

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "_bundled"
"""Directory of the bundled datasets (the repository's ``data/`` folder)."""

PAPER_SEED = 20251012
"""Seed that produced ``paper_sessions.csv``."""


def bundled_path(name: str) -> Path:
    """Return the path of a bundled file, failing clearly if the installation lacks it.

    Parameters
    ----------
    name : str
        File name inside the bundled data directory.

    Returns
    -------
    Path

    Raises
    ------
    DataError
        If the file is not part of this installation.
    """
    path = DATA_DIR / name
    if not path.is_file():
        raise DataError(
            f"bundled dataset {name!r} is missing from {DATA_DIR}; reinstall sdebayes or pass "
            "the path of a table"
        )
    return path


def paper_sessions_path() -> Path:
    """Return the path of the bundled paper-calibrated trajectories (the default data)."""
    return bundled_path("paper_sessions.csv")


def paper_truth_path() -> Path:
    """Return the path of the true parameters behind ``paper_sessions.csv``."""
    return bundled_path("paper_truth.json")


def real_sessions_path() -> Path:
    """Return the path of the bundled scores of real LLM refinement traces."""
    return bundled_path("real_sessions.csv")


def paper_truth() -> dict[str, Any]:
    """Read the true parameters and derived quantities of the bundled paper data.

    Returns
    -------
    dict
        ``{"scenario", "seed", "objectives", "strategies": {NAME: {"drift", "intercept",
        "convergence_rate", ...}}}`` with plain numbers and lists, objectives in data order.

    Examples
    --------
    >>> truth = paper_truth()
    >>> sorted(truth["strategies"])
    ['AI', 'EF', 'FF', 'SF']
    """
    return json.loads(paper_truth_path().read_text(encoding="utf-8"))
