r"""Efficiency score: cyclomatic complexity, loop nesting and recognised costly patterns.

Everything is read from the syntax tree: radon's cyclomatic complexity (computed from the tree,
``assert`` statements not counted), the deepest nesting of loops within one function, and
patterns whose cost grows with the data inside a loop.

Notes
-----
With :math:`c` the largest cyclomatic complexity of any function, method or of the module body,
:math:`d` the maximum loop nesting depth and :math:`W` the summed weights of the costly patterns
(:data:`PATTERN_WEIGHTS`),

.. math::

    \text{efficiency} = \operatorname{clip}\bigl(10
        - 3 (1 - e^{-\max(0, c - 5)/10})
        - 1.5 \min(\max(d - 1, 0), 3)
        - 4 (1 - e^{-W/3}), 0, 10\bigr).

A version without a syntax tree scores :data:`UNPARSED_SCORE`.
"""

from __future__ import annotations

import ast
import logging
import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from sdebayes.scoring._ast_tools import (
    COMPREHENSION_TYPES,
    FUNCTION_TYPES,
    ScopedNode,
    iter_scopes,
    max_nesting_depth,
    sequence_key,
    walk_scope,
)
from sdebayes.scoring.program import ObjectiveScore, Program

__all__ = [
    "PATTERN_WEIGHTS",
    "UNPARSED_SCORE",
    "costly_patterns",
    "cyclomatic_complexity",
    "loop_nesting_depth",
    "score_efficiency",
]

logger = logging.getLogger(__name__)

PATTERN_WEIGHTS: dict[str, float] = {
    "linear_search_in_loop": 1.0,
    "nested_loop_same_sequence": 1.5,
    "string_concat_in_loop": 0.5,
    "list_shift_in_loop": 1.0,
}
"""Weight of one occurrence of each costly pattern."""

COMPLEXITY_FREE = 5
"""Cyclomatic complexity up to which there is no penalty (radon's rank A)."""

COMPLEXITY_PENALTY, COMPLEXITY_SCALE = 3.0, 10.0
NESTING_PENALTY, NESTING_CAP = 1.5, 3
PATTERN_PENALTY, PATTERN_SCALE = 4.0, 3.0

UNPARSED_SCORE = 5.0
"""Efficiency of a version without a syntax tree: no evidence either way, the midpoint."""

_LIST_FUNCTIONS = frozenset({"list", "sorted"})
_LIST_METHODS = frozenset({"split", "rsplit", "splitlines", "readlines"})
_STR_METHODS = frozenset({"join", "format", "strip", "lower", "upper", "replace", "lstrip"})
_SEARCH_METHODS = frozenset({"index", "count"})


def score_efficiency(program: Program) -> ObjectiveScore:
    r"""Score how efficient a program looks, on 0-10 (higher is more efficient).

    Parameters
    ----------
    program : Program
        A parsed version (see :func:`sdebayes.scoring.parse_program`).

    Returns
    -------
    ObjectiveScore
        The score and, as details, the complexity, the nesting depth and each costly pattern
        with its line.

    Examples
    --------
    >>> from sdebayes.scoring.program import parse_program
    >>> flat = score_efficiency(parse_program("for x in xs:\n    total += x\n"))
    >>> flat.value
    10.0
    """
    if program.tree is None:
        return ObjectiveScore(UNPARSED_SCORE, {"rule": "unparsed", "status": program.status})

    complexity = cyclomatic_complexity(program.tree)
    scopes = program.scopes
    depth = max((max_nesting_depth(scoped) for _, scoped in scopes), default=0)
    patterns = [item for scope, scoped in scopes for item in _scope_patterns(scope, scoped)]
    patterns.sort(key=lambda pattern: pattern["line"])
    weight = sum(PATTERN_WEIGHTS[pattern["kind"]] for pattern in patterns)

    penalties = {
        "complexity": COMPLEXITY_PENALTY
        * (1 - math.exp(-max(0, complexity - COMPLEXITY_FREE) / COMPLEXITY_SCALE)),
        "nesting": NESTING_PENALTY * min(max(depth - 1, 0), NESTING_CAP),
        "patterns": PATTERN_PENALTY * (1 - math.exp(-weight / PATTERN_SCALE)),
    }
    value = min(10.0, max(0.0, 10.0 - sum(penalties.values())))
    details = {
        "complexity": complexity,
        "loop_depth": depth,
        "patterns": patterns,
        "penalties": {name: round(penalty, 4) for name, penalty in penalties.items()},
    }
    return ObjectiveScore(value, details)


def cyclomatic_complexity(tree: ast.Module) -> int:
    """Largest radon cyclomatic complexity of the module body, any function, method or closure.

    ``assert`` statements are not counted: test asserts appended to a program say nothing
    about the cost of the program itself.
    """
    from radon.visitors import ComplexityVisitor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        visitor = ComplexityVisitor.from_ast(tree, no_assert=True)
    largest = visitor.complexity
    blocks = list(visitor.blocks)
    while blocks:
        block = blocks.pop()
        largest = max(largest, block.complexity)
        blocks.extend(getattr(block, "closures", []))
    return int(largest)


def loop_nesting_depth(tree: ast.Module) -> int:
    """Deepest nesting of loops (``for``, ``while``, comprehension generators) in one scope.

    A loop inside a function defined inside a loop starts again from depth 0: the function's
    body is its own scope.
    """
    depths = (max_nesting_depth(list(walk_scope(scope))) for scope in iter_scopes(tree))
    return max(depths, default=0)


def costly_patterns(tree: ast.Module) -> list[dict[str, Any]]:
    r"""Find the costly patterns of a program (see :data:`PATTERN_WEIGHTS`).

    Parameters
    ----------
    tree : ast.Module
        Syntax tree of the program.

    Returns
    -------
    list of dict
        ``{"kind", "line", ...}`` per occurrence, in the order of the source.

    Examples
    --------
    >>> code = "seen = []\nfor x in xs:\n    if x not in seen:\n        seen.append(x)\n"
    >>> [pattern["kind"] for pattern in costly_patterns(ast.parse(code))]
    ['linear_search_in_loop']
    """
    found = [
        pattern
        for scope in iter_scopes(tree)
        for pattern in _scope_patterns(scope, list(walk_scope(scope)))
    ]
    found.sort(key=lambda pattern: pattern["line"])
    return found


def _scope_patterns(scope: ast.AST, scoped: Sequence[ScopedNode]) -> list[dict[str, Any]]:
    lists, strings = _typed_names(scope, scoped)
    found: list[dict[str, Any]] = []
    for item in scoped:
        node = item.node
        for key in _nested_same_sequence(item):
            found.append(_pattern("nested_loop_same_sequence", node, sequence=key))
        if item.loop_depth == 0:
            continue
        if isinstance(node, ast.Compare):
            for operator, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(operator, ast.In | ast.NotIn) and _is_list(right, lists):
                    found.append(_pattern("linear_search_in_loop", node, operation="in list"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            receiver = node.func.value
            if method in _SEARCH_METHODS and not (
                isinstance(receiver, ast.Name) and receiver.id == "itertools"
            ):
                found.append(_pattern("linear_search_in_loop", node, operation=f".{method}()"))
            elif _is_front_shift(method, node):
                found.append(_pattern("list_shift_in_loop", node, operation=f".{method}(0)"))
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
            if isinstance(node.target, ast.Name) and (
                node.target.id in strings or _kind(node.value) == "str"
            ):
                found.append(_pattern("string_concat_in_loop", node))
        elif isinstance(node, ast.Assign) and _is_self_concatenation(node, strings):
            found.append(_pattern("string_concat_in_loop", node))
    return found


def _pattern(kind: str, node: ast.AST, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "line": getattr(node, "lineno", 0), **extra}


def _nested_same_sequence(item: ScopedNode) -> Iterable[str]:
    """Keys of loops nested inside a loop over the same sequence."""
    node = item.node
    if isinstance(node, ast.For | ast.AsyncFor):
        key = sequence_key(node.iter)
        if key is not None and key in item.loop_keys:
            yield key
    elif isinstance(node, COMPREHENSION_TYPES):
        keys = list(item.loop_keys)
        for generator in node.generators:
            key = sequence_key(generator.iter)
            if key is not None and key in keys:
                yield key
            keys.append(key)


def _is_front_shift(method: str, call: ast.Call) -> bool:
    if not call.args:
        return False
    first = call.args[0]
    at_front = isinstance(first, ast.Constant) and first.value == 0 and first.value is not False
    return at_front and (
        (method == "pop" and len(call.args) == 1) or (method == "insert" and len(call.args) == 2)
    )


def _is_self_concatenation(node: ast.Assign, strings: set[str]) -> bool:
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        return False
    value = node.value
    name = node.targets[0].id
    return (
        isinstance(value, ast.BinOp)
        and isinstance(value.op, ast.Add)
        and isinstance(value.left, ast.Name)
        and value.left.id == name
        and (name in strings or _kind(value.right) == "str")
    )


def _is_list(node: ast.AST, lists: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in lists
    return _kind(node) == "list"


def _kind(node: ast.AST | None) -> str:
    """Classify a value as far as its syntax shows: ``list``, ``str`` or ``other``."""
    if isinstance(node, ast.List | ast.ListComp):
        return "list"
    if isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    ):
        return "str"
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            if node.func.id in _LIST_FUNCTIONS:
                return "list"
            if node.func.id == "str":
                return "str"
        if isinstance(node.func, ast.Attribute):
            if node.func.attr in _LIST_METHODS:
                return "list"
            if node.func.attr in _STR_METHODS and _kind(node.func.value) == "str":
                return "str"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        if "str" in {_kind(node.left), _kind(node.right)}:
            return "str"
    return "other"


def _annotation_kind(annotation: ast.AST | None) -> str:
    if annotation is None:
        return "other"
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    name = (
        annotation.attr if isinstance(annotation, ast.Attribute) else getattr(annotation, "id", "")
    )
    return {"list": "list", "List": "list", "str": "str"}.get(name, "other")


def _typed_names(scope: ast.AST, scoped: Sequence[ScopedNode]) -> tuple[set[str], set[str]]:
    """Names that every assignment in the scope makes a list, and those it makes a string."""
    kinds: dict[str, set[str]] = {}
    for item in scoped:
        node = item.node
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        kind = _kind(node.value) if name is target else "other"
                        kinds.setdefault(name.id, set()).add(kind)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            kind = _annotation_kind(node.annotation)
            if kind == "other" and node.value is not None:
                kind = _kind(node.value)
            kinds.setdefault(node.target.id, set()).add(kind)
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension | ast.NamedExpr):
            for name in ast.walk(node.target):
                if isinstance(name, ast.Name):
                    kinds.setdefault(name.id, set()).add("other")

    if isinstance(scope, FUNCTION_TYPES):
        _add_parameter_kinds(scope, kinds)
    lists = {name for name, seen in kinds.items() if seen == {"list"}}
    strings = {name for name, seen in kinds.items() if seen == {"str"}}
    return lists, strings


def _add_parameter_kinds(
    function: ast.FunctionDef | ast.AsyncFunctionDef, kinds: dict[str, set[str]]
) -> None:
    """Parameters annotated ``list``/``List[...]``/``str``."""
    arguments = function.args
    for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
        kind = _annotation_kind(argument.annotation)
        if kind != "other":
            kinds.setdefault(argument.arg, set()).add(kind)
