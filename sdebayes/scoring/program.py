"""A program version as scorers see it: its text, its syntax tree and why it may lack one.

Scoring is static. :func:`parse_program` only calls :func:`ast.parse`; the code is never
executed, imported, compiled to bytecode or evaluated. Inputs that :func:`ast.parse` cannot
handle (text with NUL bytes or lone surrogates, nesting so deep that the parser gives up, files
above a size limit, empty programs) get a status instead of a tree, so one bad version never
stops a batch.
"""

from __future__ import annotations

import ast
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from sdebayes.scoring._ast_tools import SCOPE_TYPES, ScopedNode, walk_scope

__all__ = [
    "DEFAULT_MAX_CHARS",
    "ObjectiveScore",
    "ParseStatus",
    "Program",
    "parse_program",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_CHARS = 1_000_000
"""Programs longer than this many characters are flagged ``too_large`` and not parsed."""

ParseStatus = Literal["ok", "syntax_error", "invalid_text", "too_complex", "too_large", "empty"]
"""Outcome of parsing: ``ok`` is the only status with a syntax tree.

* ``syntax_error``: :func:`ast.parse` raised :class:`SyntaxError` (prose, truncated code).
* ``invalid_text``: NUL bytes, or characters that have no UTF-8 encoding (lone surrogates).
* ``too_complex``: the parser ran out of recursion depth or memory (very deep nesting).
* ``too_large``: longer than the size limit; not parsed at all.
* ``empty``: the text parses but holds no statement (empty, blank or only comments).
"""

_MAX_WARNINGS = 5


@dataclass(frozen=True)
class Program:
    """One program version, parsed once and shared by every scorer.

    Parameters
    ----------
    code : str
        The source text as it appeared in the trace, without a leading byte-order mark.
    tree : ast.Module or None
        The syntax tree, or ``None`` when ``status`` is not ``"ok"``.
    status : {"ok", "syntax_error", "invalid_text", "too_complex", "too_large", "empty"}
        Outcome of parsing; see :data:`ParseStatus`.
    parse_error : str or None
        One-line reason when the program has no tree.
    parse_warnings : tuple of str
        Warnings the parser emitted (for example ``SyntaxWarning: invalid escape sequence``),
        at most five, kept for the findings file instead of being shown.
    """

    code: str
    tree: ast.Module | None
    status: ParseStatus
    parse_error: str | None = None
    parse_warnings: tuple[str, ...] = ()

    @property
    def parse_ok(self) -> bool:
        """Whether the program has a syntax tree with at least one statement."""
        return self.tree is not None

    @cached_property
    def nodes(self) -> tuple[ast.AST, ...]:
        """Every node of the tree, breadth first (empty without a tree), computed once."""
        return tuple(ast.walk(self.tree)) if self.tree is not None else ()

    @cached_property
    def scopes(self) -> tuple[tuple[ast.AST, tuple[ScopedNode, ...]], ...]:
        """Each scope (module, class, function, lambda) with its nodes in loop context.

        See :func:`sdebayes.scoring._ast_tools.walk_scope`; computed once.
        """
        return tuple(
            (node, tuple(walk_scope(node))) for node in self.nodes if isinstance(node, SCOPE_TYPES)
        )


@dataclass(frozen=True)
class ObjectiveScore:
    """What a scorer returns: a score on 0-10 (higher is better) and the evidence behind it.

    Parameters
    ----------
    value : float
        The score, in the closed interval [0, 10].
    details : Mapping
        JSON-serialisable findings (rule ids, counts, line numbers) written by
        ``sdebayes score --details``.
    """

    value: float
    details: Mapping[str, Any] = field(default_factory=dict)


def parse_program(code: str, max_chars: int = DEFAULT_MAX_CHARS) -> Program:
    r"""Parse a program version without running it, classifying inputs that do not parse.

    Parameters
    ----------
    code : str
        Source text of one version.
    max_chars : int, default=1_000_000
        Longer texts are not parsed and get the status ``"too_large"``.

    Returns
    -------
    Program
        With a tree when the text is a non-empty Python module, otherwise with the status and
        a one-line reason. Parser warnings are recorded, never shown or raised.

    Raises
    ------
    TypeError
        If ``code`` is not a string.

    Examples
    --------
    >>> parse_program("def f(x):\n    return x\n").status
    'ok'
    >>> parse_program("Sure! Here is the improved code.").status
    'syntax_error'
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, got {type(code).__name__}")
    code = code.removeprefix("\ufeff")  # a byte-order mark is not part of the program

    if len(code) > max_chars:
        return Program(
            code, None, "too_large", f"{len(code)} characters, above the limit of {max_chars}"
        )
    if "\x00" in code:
        return Program(code, None, "invalid_text", "the text contains NUL bytes")
    try:
        code.encode("utf-8")
    except UnicodeEncodeError as err:
        return Program(
            code,
            None,
            "invalid_text",
            f"character {err.start} has no UTF-8 encoding ({err.reason})",
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tree = ast.parse(code)
        except SyntaxError as err:
            status: ParseStatus = "syntax_error"
            reason = f"{type(err).__name__}: {err.msg} (line {err.lineno})"
            tree = None
        except (RecursionError, MemoryError) as err:
            status, reason, tree = "too_complex", f"{type(err).__name__}: {err}", None
        except ValueError as err:  # older parsers reported NUL bytes as ValueError
            status, reason, tree = "invalid_text", f"{type(err).__name__}: {err}", None
    parse_warnings = _summarize_warnings(caught)

    if tree is None:
        return Program(code, None, status, _one_line(reason), parse_warnings)
    if not tree.body:
        return Program(code, None, "empty", "no statement (empty, blank or only comments)")
    return Program(code, tree, "ok", None, parse_warnings)


def _summarize_warnings(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    messages = dict.fromkeys(
        f"{item.category.__name__}: {item.message} (line {item.lineno})" for item in caught
    )
    return tuple(_one_line(message) for message in list(messages)[:_MAX_WARNINGS])


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
