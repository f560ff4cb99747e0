r"""Functionality score: structural richness of the syntax tree.

Static scoring cannot tell whether a program is correct. Following the study, functionality is
measured by how much deliberate structure the program has: functions, branches that handle
cases and errors, functions that return results, docstrings and type hints.

Notes
-----
With :math:`n_f` the number of functions and methods, :math:`n_b` the number of handled
branches (``if``/``elif`` statements, conditional expressions, ``except`` clauses and
``match`` cases), and, over the functions, :math:`r` the share that return or yield a value,
:math:`q` the share of functions and classes with a docstring and :math:`a` the share of
annotated parameters and return types (``self``/``cls`` excluded),

.. math::

    \text{functionality} = 10 \bigl[0.25 (1 - e^{-n_f/2}) + 0.25 (1 - e^{-n_b/4})
        + 0.2 r + 0.15 q + 0.15 a\bigr].

Shares are 0 for a program without functions. A version without a syntax tree scores
:data:`UNPARSED_SCORE`.
"""

from __future__ import annotations

import ast
import logging
import math
from collections.abc import Iterable, Mapping, Sequence

from sdebayes.scoring._ast_tools import (
    FUNCTION_TYPES,
    ScopedNode,
    parameter_names,
    walk_scope,
)
from sdebayes.scoring.program import ObjectiveScore, Program

__all__ = ["UNPARSED_SCORE", "WEIGHTS", "score_functionality", "structure_counts"]

logger = logging.getLogger(__name__)

WEIGHTS = {
    "functions": 0.25,
    "branches": 0.25,
    "returns": 0.20,
    "docstrings": 0.15,
    "type_hints": 0.15,
}
"""Weight of each structural signal; they sum to 1."""

FUNCTION_SCALE = 2.0
"""Functions at which the function signal reaches 1 - 1/e."""

BRANCH_SCALE = 4.0
"""Handled branches at which the branch signal reaches 1 - 1/e."""

UNPARSED_SCORE = 0.0
"""Functionality of a version without a syntax tree: nothing that could work."""


def structure_counts(
    tree: ast.Module,
    nodes: Iterable[ast.AST] | None = None,
    scopes: Mapping[ast.AST, Sequence[ScopedNode]] | None = None,
) -> dict[str, float]:
    r"""Count the structural elements that functionality is built from.

    Parameters
    ----------
    tree : ast.Module
        Syntax tree of the program.
    nodes : iterable of ast.AST, optional
        ``ast.walk(tree)``, when already computed.
    scopes : mapping, optional
        Each function's nodes from :func:`sdebayes.scoring._ast_tools.walk_scope`, when
        already computed.

    Returns
    -------
    dict
        ``functions``, ``classes``, ``branches`` (counts) and ``returns``, ``docstrings``,
        ``type_hints`` (shares in [0, 1]).

    Examples
    --------
    >>> counts = structure_counts(ast.parse("def f(x: int) -> int:\n    return x\n"))
    >>> counts["functions"], counts["returns"], counts["type_hints"]
    (1, 1.0, 1.0)
    """
    functions = []
    classes = documented_classes = branches = 0
    for node in ast.walk(tree) if nodes is None else nodes:
        if isinstance(node, FUNCTION_TYPES):
            functions.append(node)
        elif isinstance(node, ast.ClassDef):
            classes += 1
            documented_classes += ast.get_docstring(node, clean=False) is not None
        elif isinstance(node, ast.If | ast.IfExp | ast.ExceptHandler | ast.match_case):
            branches += 1

    scopes = scopes or {}
    returning = sum(
        _returns_value(scopes.get(function) or list(walk_scope(function))) for function in functions
    )
    documented = sum(ast.get_docstring(function, clean=False) is not None for function in functions)
    slots = annotated = 0
    for function in functions:
        names = set(parameter_names(function))
        for argument in _arguments(function):
            if argument.arg in names:
                slots += 1
                annotated += argument.annotation is not None
        slots += 1
        annotated += function.returns is not None

    documentable = len(functions) + classes
    return {
        "functions": len(functions),
        "classes": classes,
        "branches": branches,
        "returns": returning / len(functions) if functions else 0.0,
        "docstrings": (documented + documented_classes) / documentable if documentable else 0.0,
        "type_hints": annotated / slots if slots else 0.0,
    }


def score_functionality(program: Program) -> ObjectiveScore:
    r"""Score how much deliberate structure a program has, on 0-10 (higher is richer).

    Parameters
    ----------
    program : Program
        A parsed version (see :func:`sdebayes.scoring.parse_program`).

    Returns
    -------
    ObjectiveScore
        The score and, as details, the counts of :func:`structure_counts`.

    Examples
    --------
    >>> from sdebayes.scoring.program import parse_program
    >>> score_functionality(parse_program("print('hello')\n")).value
    0.0
    """
    if program.tree is None:
        return ObjectiveScore(UNPARSED_SCORE, {"rule": "unparsed", "status": program.status})

    counts = structure_counts(program.tree, program.nodes, dict(program.scopes))
    signals = {
        "functions": 1 - math.exp(-counts["functions"] / FUNCTION_SCALE),
        "branches": 1 - math.exp(-counts["branches"] / BRANCH_SCALE),
        "returns": counts["returns"],
        "docstrings": counts["docstrings"] if counts["functions"] else 0.0,
        "type_hints": counts["type_hints"],
    }
    value = 10 * sum(WEIGHTS[name] * signal for name, signal in signals.items())
    details = {name: round(number, 4) for name, number in counts.items()}
    return ObjectiveScore(min(10.0, max(0.0, value)), details)


def _arguments(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every.extend(argument for argument in (arguments.vararg, arguments.kwarg) if argument)
    return every


def _returns_value(scoped: Iterable[ScopedNode]) -> bool:
    """Whether a function's own body returns a value or yields."""
    for item in scoped:
        node = item.node
        if isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                return True
        if isinstance(node, ast.Yield | ast.YieldFrom):
            return True
    return False
