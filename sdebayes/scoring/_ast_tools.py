"""Syntax-tree helpers shared by the scorers: scopes, loop context, names and imports.

Every traversal here is iterative, so a tree that :func:`ast.parse` accepted never hits the
interpreter's recursion limit in our own code, however deep it is.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "COMPREHENSION_TYPES",
    "FUNCTION_TYPES",
    "LOOP_TYPES",
    "SCOPE_TYPES",
    "ScopedNode",
    "call_name",
    "dotted_name",
    "import_aliases",
    "iter_scopes",
    "max_nesting_depth",
    "parameter_names",
    "sequence_key",
    "walk_scope",
]

logger = logging.getLogger(__name__)

FUNCTION_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)
SCOPE_TYPES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
LOOP_TYPES = (ast.For, ast.AsyncFor, ast.While)
COMPREHENSION_TYPES = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True, slots=True)
class ScopedNode:
    """A node of one scope with its loop context.

    Parameters
    ----------
    node : ast.AST
        The node.
    loop_depth : int
        How many loops (``for``, ``while``, comprehension generators) of the same scope run
        this node once per iteration.
    loop_keys : tuple
        :func:`sequence_key` of each enclosing loop's iterable, outermost first (``None`` for
        ``while`` loops and iterables without a recognisable sequence).
    """

    node: ast.AST
    loop_depth: int
    loop_keys: tuple[str | None, ...]


def iter_scopes(tree: ast.AST, nodes: Iterable[ast.AST] | None = None) -> Iterator[ast.AST]:
    """Yield the module, every class, function and lambda of ``tree`` (breadth first).

    ``nodes``, when given, is ``ast.walk(tree)`` computed beforehand.
    """
    for node in ast.walk(tree) if nodes is None else nodes:
        if isinstance(node, SCOPE_TYPES):
            yield node


def walk_scope(scope: ast.AST) -> Iterator[ScopedNode]:
    """Yield the nodes of one scope with their loop context, not entering nested scopes.

    Nested functions, classes and lambdas are yielded themselves (so they can be counted) but
    their bodies belong to their own scope. The iterable of a ``for`` loop and of the first
    generator of a comprehension is evaluated once, outside the loop.
    """
    start: list[ast.AST] = (
        [scope.body] if isinstance(scope, ast.Lambda) else list(getattr(scope, "body", []))
    )
    stack: list[tuple[ast.AST, int, tuple[str | None, ...]]] = [
        (node, 0, ()) for node in reversed(start)
    ]

    while stack:
        node, depth, keys = stack.pop()
        yield ScopedNode(node, depth, keys)
        if isinstance(node, SCOPE_TYPES):
            continue
        stack.extend(reversed(list(_children(node, depth, keys))))


def _children(
    node: ast.AST, depth: int, keys: tuple[str | None, ...]
) -> Iterator[tuple[ast.AST, int, tuple[str | None, ...]]]:
    if isinstance(node, ast.For | ast.AsyncFor):
        yield node.target, depth, keys
        yield node.iter, depth, keys
        body_keys = (*keys, sequence_key(node.iter))
        for statement in node.body:
            yield statement, depth + 1, body_keys
        for statement in node.orelse:
            yield statement, depth, keys
    elif isinstance(node, ast.While):
        body_keys = (*keys, None)
        yield node.test, depth + 1, body_keys
        for statement in node.body:
            yield statement, depth + 1, body_keys
        for statement in node.orelse:
            yield statement, depth, keys
    elif isinstance(node, COMPREHENSION_TYPES):
        level, level_keys = depth, keys
        for generator in node.generators:
            yield generator.iter, level, level_keys
            level, level_keys = level + 1, (*level_keys, sequence_key(generator.iter))
            yield generator.target, level, level_keys
            for condition in generator.ifs:
                yield condition, level, level_keys
        if isinstance(node, ast.DictComp):
            yield node.key, level, level_keys
            yield node.value, level, level_keys
        else:
            yield node.elt, level, level_keys
    else:
        for child in ast.iter_child_nodes(node):
            yield child, depth, keys


def max_nesting_depth(scoped: Sequence[ScopedNode]) -> int:
    """Deepest loop nesting among the nodes of one scope (0 when there is no loop)."""
    deepest = 0
    for item in scoped:
        if isinstance(item.node, LOOP_TYPES):
            deepest = max(deepest, item.loop_depth + 1)
        elif isinstance(item.node, COMPREHENSION_TYPES):
            deepest = max(deepest, item.loop_depth + len(item.node.generators))
    return deepest


def dotted_name(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else ``None``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def import_aliases(tree: ast.AST, nodes: Iterable[ast.AST] | None = None) -> dict[str, str]:
    """Map each name bound by an import to what it refers to (``sp`` -> ``subprocess``)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree) if nodes is None else nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def call_name(call: ast.Call, aliases: dict[str, str]) -> str | None:
    """Fully qualified name of the called object, resolving import aliases, or ``None``."""
    name = dotted_name(call.func)
    if name is None:
        return None
    head, _, rest = name.partition(".")
    if head in aliases:
        name = aliases[head] + (f".{rest}" if rest else "")
    return name


def sequence_key(node: ast.AST) -> str | None:
    """Name of the sequence a loop walks over, for spotting nested loops over the same data.

    ``xs``, ``self.xs``, ``range(len(xs))``, ``range(i + 1, len(xs))``, ``enumerate(xs)``,
    ``reversed(xs)``, ``sorted(xs)``, ``zip(xs, ...)`` and ``xs[i:]`` all walk ``xs``; anything
    else gives ``None``.
    """
    for _ in range(8):  # a few wrappers deep at most, e.g. enumerate(xs[1:])
        if isinstance(node, ast.Subscript):
            node = node.value
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            function = node.func.id
            if function in {"enumerate", "reversed", "sorted", "zip", "list", "iter"}:
                node = node.args[0]
                continue
            if function == "range":
                for argument in node.args:
                    if (
                        isinstance(argument, ast.Call)
                        and isinstance(argument.func, ast.Name)
                        and argument.func.id == "len"
                        and argument.args
                    ):
                        return dotted_name(argument.args[0])
                    if isinstance(argument, ast.BinOp):
                        for side in (argument.left, argument.right):
                            if (
                                isinstance(side, ast.Call)
                                and isinstance(side.func, ast.Name)
                                and side.func.id == "len"
                                and side.args
                            ):
                                return dotted_name(side.args[0])
                return None
        break
    return dotted_name(node)


def parameter_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[str]:
    """Names of a function's parameters, without ``self`` and ``cls``."""
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    if arguments.vararg:
        every.append(arguments.vararg)
    if arguments.kwarg:
        every.append(arguments.kwarg)
    return [argument.arg for argument in every if argument.arg not in {"self", "cls"}]
