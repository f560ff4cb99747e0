r"""Static scoring of program versions: traces in, trajectories of objective scores out.

A trace file (JSON Lines, one program version per line; :func:`read_traces`) is scored version
by version on three built-in objectives, each on 0-10 with higher better: ``security``
(:mod:`sdebayes.scoring.security`), ``efficiency`` (:mod:`sdebayes.scoring.efficiency`) and
``functionality`` (:mod:`sdebayes.scoring.functionality`). :func:`score_versions` runs the
scorers in parallel processes and returns a :class:`ScoreBatch` whose
:meth:`~ScoreBatch.table` is the trajectory table ``sdebayes sample`` reads.

The code is never executed, imported or evaluated: only :func:`ast.parse`, bandit's static
analysis and radon read it. Objectives are pluggable; see :mod:`sdebayes.scoring.registry`.
The formulas and constants are in ``docs/scoring.md``.

Examples
--------
>>> from sdebayes.scoring import TraceVersion, score_versions
>>> versions = [
...     TraceVersion("s1", "security", 0, "def f(x):\n    return eval(x)\n"),
...     TraceVersion("s1", "security", 1, "def f(x: str) -> int:\n    return int(x)\n"),
... ]
>>> table = score_versions(versions, workers=1, progressbar=False).table()
>>> bool(table.loc[1, "security"] > table.loc[0, "security"])
True
"""

from __future__ import annotations

from sdebayes.scoring.batch import (
    DEFAULT_TIME_LIMIT,
    ProgramScores,
    ScoreBatch,
    default_workers,
    score_program,
    score_versions,
)
from sdebayes.scoring.program import DEFAULT_MAX_CHARS, ObjectiveScore, Program, parse_program
from sdebayes.scoring.registry import (
    ENTRY_POINT_GROUP,
    Scorer,
    ScorerError,
    available_scorers,
    get_scorer,
    register_scorer,
    unregister_scorer,
)
from sdebayes.scoring.traces import TraceVersion, read_traces

__all__ = [
    "DEFAULT_MAX_CHARS",
    "DEFAULT_TIME_LIMIT",
    "ENTRY_POINT_GROUP",
    "ObjectiveScore",
    "Program",
    "ProgramScores",
    "ScoreBatch",
    "Scorer",
    "ScorerError",
    "TraceVersion",
    "available_scorers",
    "default_workers",
    "get_scorer",
    "parse_program",
    "read_traces",
    "register_scorer",
    "score_program",
    "score_versions",
    "unregister_scorer",
]
