r"""Security score: bandit findings weighted by severity and confidence, plus defensive practice.

bandit runs as a library inside the current process on the program text; nothing is written
to disk, no subprocess is started and the program is never executed. ``# nosec`` comments in
the scored code are ignored, so a model cannot silence a finding by annotating it.

Notes
-----
With findings grouped by bandit test id :math:`t` (``B101``, ``B307``, ...), :math:`n_t` the
number of findings of test :math:`t` and :math:`W_t` the largest weight among them, where a
finding of severity :math:`s` and confidence :math:`c` weighs :math:`w_s c_c`,

.. math::

    P = \sum_t W_t (1 + \ln n_t), \qquad
    \text{security} = 8 e^{-P/6} + \tfrac{2}{3} (v + h + d).

The three defensive-practice signals, each in [0, 1], are input validation :math:`v`,
specific exception handling :math:`h` and absence of dangerous calls :math:`d`; see
``docs/scoring.md`` for their definitions and :data:`SEVERITY_WEIGHTS`,
:data:`CONFIDENCE_WEIGHTS` for the constants. A version without a syntax tree scores
:data:`UNPARSED_SCORE`.
"""

from __future__ import annotations

import ast
import functools
import io
import logging
import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from sdebayes.scoring._ast_tools import (
    FUNCTION_TYPES,
    ScopedNode,
    call_name,
    dotted_name,
    import_aliases,
    parameter_names,
)
from sdebayes.scoring.program import ObjectiveScore, Program

__all__ = [
    "CONFIDENCE_WEIGHTS",
    "DANGEROUS_CALLS",
    "FINDINGS_SCALE",
    "SEVERITY_WEIGHTS",
    "UNPARSED_SCORE",
    "bandit_findings",
    "findings_penalty",
    "score_security",
]

logger = logging.getLogger(__name__)

SEVERITY_WEIGHTS = {"UNDEFINED": 0.0, "LOW": 1.0, "MEDIUM": 3.0, "HIGH": 6.0}
"""Weight of a bandit finding by its severity."""

CONFIDENCE_WEIGHTS = {"UNDEFINED": 0.0, "LOW": 0.3, "MEDIUM": 0.6, "HIGH": 1.0}
"""Multiplier of a bandit finding by bandit's confidence in it."""

FINDINGS_SCALE = 6.0
"""Penalty at which the findings part falls to 1/e of its maximum (one HIGH/HIGH finding)."""

FINDINGS_SHARE = 8.0
"""Points (of 10) given by the absence of bandit findings."""

PRACTICE_SHARE = 2.0
"""Points (of 10) given by the three defensive-practice signals together."""

NOT_APPLICABLE = 0.5
"""Value of a defensive-practice signal that does not apply (no parameters, no handlers)."""

UNPARSED_SCORE = 5.0
"""Security of a version without a syntax tree: no evidence either way, the midpoint."""

DANGEROUS_CALLS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "__import__",
        "os.system",
        "os.popen",
        "pickle.load",
        "pickle.loads",
        "cPickle.load",
        "cPickle.loads",
        "dill.load",
        "dill.loads",
        "marshal.load",
        "marshal.loads",
        "shelve.open",
        "yaml.load",
        "yaml.unsafe_load",
    }
)
"""Calls that run code or deserialise untrusted data; ``os.exec*``, ``os.spawn*`` and any
``subprocess`` call with ``shell=True`` count too."""

_BROAD_EXCEPTIONS = frozenset({"Exception", "BaseException"})
_TRIVIAL_HANDLER = (ast.Pass, ast.Continue)


@functools.cache
def _bandit() -> tuple[Any, Any, Any, Any]:
    """Import bandit and build its full default test set, once per process.

    bandit's plugin loader emits a DeprecationWarning on import (through stevedore); it is
    silenced here, not globally.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from bandit.core import config, meta_ast, metrics, node_visitor, test_set

        tests = test_set.BanditTestSet(config.BanditConfig(), profile={})
    return tests, meta_ast, metrics, node_visitor


class _Collect(logging.Handler):
    """Keep bandit's own log records (plugin errors) instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < 3:
            self.messages.append(record.getMessage().splitlines()[0][:200])


def bandit_findings(code: str) -> tuple[list[dict[str, Any]], list[str]]:
    r"""Run every default bandit test on ``code`` in memory and list what it finds.

    Parameters
    ----------
    code : str
        Source text. It is parsed by bandit, never executed.

    Returns
    -------
    findings : list of dict
        One ``{"test_id", "test", "severity", "confidence", "line"}`` per finding.
    errors : list of str
        bandit's internal errors (a plugin that failed on this program), at most three.

    Raises
    ------
    SyntaxError
        If the code does not parse.

    Examples
    --------
    >>> findings, errors = bandit_findings("import pickle\npickle.loads(b'')\n")
    >>> sorted(finding["test_id"] for finding in findings)
    ['B301', 'B403']
    """
    tests, meta_ast, metrics, node_visitor = _bandit()
    collector = _Collect()
    bandit_logger = logging.getLogger("bandit")
    propagate = bandit_logger.propagate
    bandit_logger.addHandler(collector)
    bandit_logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            visitor = node_visitor.BanditNodeVisitor(
                "./program.py",
                io.BytesIO(code.encode("utf-8")),
                meta_ast.BanditMetaAst(),
                tests,
                False,
                {},  # no nosec lines: annotations in scored code are not trusted
                metrics.Metrics(),
            )
            visitor.process(code)
    finally:
        bandit_logger.removeHandler(collector)
        bandit_logger.propagate = propagate

    findings = [
        {
            "test_id": issue.test_id,
            "test": issue.test,
            "severity": str(issue.severity),
            "confidence": str(issue.confidence),
            "line": issue.lineno,
        }
        for issue in visitor.tester.results
    ]
    return findings, collector.messages


def findings_penalty(findings: list[dict[str, Any]]) -> float:
    r"""Penalty :math:`P = \sum_t W_t (1 + \ln n_t)` of a list of bandit findings."""
    by_test: dict[str, list[float]] = {}
    for finding in findings:
        weight = SEVERITY_WEIGHTS.get(finding["severity"], 0.0) * CONFIDENCE_WEIGHTS.get(
            finding["confidence"], 0.0
        )
        by_test.setdefault(finding["test_id"], []).append(weight)
    return sum(max(weights) * (1 + math.log(len(weights))) for weights in by_test.values())


def score_security(program: Program) -> ObjectiveScore:
    r"""Score how safe a program looks, on 0-10 (higher is safer).

    Parameters
    ----------
    program : Program
        A parsed version (see :func:`sdebayes.scoring.parse_program`).

    Returns
    -------
    ObjectiveScore
        The score and, as details, the bandit findings, the penalty and the three
        defensive-practice signals.

    Examples
    --------
    >>> from sdebayes.scoring.program import parse_program
    >>> clean = score_security(parse_program("def f(x):\n    return x + 1\n"))
    >>> risky = score_security(parse_program("import os\nos.system(input())\n"))
    >>> risky.value < clean.value
    True
    """
    if program.tree is None:
        return ObjectiveScore(UNPARSED_SCORE, {"rule": "unparsed", "status": program.status})

    findings, errors = bandit_findings(program.code)
    penalty = findings_penalty(findings)
    validation = _validation_signal(program)
    handling = _handling_signal(program)
    dangerous = _dangerous_calls(program)
    danger_free = max(0.0, 1.0 - 0.5 * len(dangerous))

    value = (
        FINDINGS_SHARE * math.exp(-penalty / FINDINGS_SCALE)
        + PRACTICE_SHARE * (validation + handling + danger_free) / 3
    )
    details = {
        "bandit": findings,
        "penalty": round(penalty, 4),
        "input_validation": round(validation, 4),
        "specific_handling": round(handling, 4),
        "dangerous_calls": dangerous,
    }
    if errors:
        details["bandit_errors"] = errors
    return ObjectiveScore(min(10.0, max(0.0, value)), details)


def _validation_signal(program: Program) -> float:
    """Share of functions with parameters that check them (``NOT_APPLICABLE`` if none)."""
    checked = total = 0
    for scope, scoped in program.scopes:
        if not isinstance(scope, FUNCTION_TYPES):
            continue
        names = set(parameter_names(scope))
        if not names:
            continue
        total += 1
        checked += _checks_parameters(scoped, names)
    return checked / total if total else NOT_APPLICABLE


def _checks_parameters(scoped: Iterable[ScopedNode], names: set[str]) -> bool:
    """Whether a function validates a parameter: isinstance, or ``if`` that raises or exits."""
    for item in scoped:
        node = item.node
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in {"isinstance", "issubclass", "callable"} and _mentions(node, names):
                return True
        if isinstance(node, ast.If) and _mentions(node.test, names):
            if any(isinstance(child, ast.Raise) for child in _own_statements(node.body)):
                return True
            if all(isinstance(child, ast.Return | ast.Raise) for child in node.body):
                return True
    return False


def _own_statements(body: list[ast.stmt]) -> Iterator[ast.AST]:
    stack = list(body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If | ast.With | ast.Try):
            for field_name in ("body", "orelse", "finalbody"):
                stack.extend(getattr(node, field_name, []))


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(child, ast.Name) and child.id in names for child in ast.walk(node))


def _handling_signal(program: Program) -> float:
    """Share of ``except`` clauses that name a specific exception and do something."""
    handlers = [node for node in program.nodes if isinstance(node, ast.ExceptHandler)]
    if not handlers:
        return NOT_APPLICABLE
    good = sum(_is_specific(handler) and not _is_trivial(handler) for handler in handlers)
    return good / len(handlers)


def _is_specific(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return False
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    for kind in types:
        name = kind.attr if isinstance(kind, ast.Attribute) else getattr(kind, "id", None)
        if name in _BROAD_EXCEPTIONS:
            return False
    return True


def _is_trivial(handler: ast.ExceptHandler) -> bool:
    return all(
        isinstance(statement, _TRIVIAL_HANDLER)
        or (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
        for statement in handler.body
    )


def _dangerous_calls(program: Program) -> list[dict[str, Any]]:
    """List calls that execute code, run a shell or unpickle data, with their lines."""
    aliases = import_aliases(program.tree, program.nodes) if program.tree else {}
    found = []
    for node in program.nodes:
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node, aliases)
        if name is None:
            continue
        if _is_dangerous(name, node):
            found.append({"call": name, "line": node.lineno})
    return found


def _is_dangerous(name: str, call: ast.Call) -> bool:
    if name in DANGEROUS_CALLS:
        if name == "yaml.load":
            return not any(
                keyword.arg == "Loader" and "Safe" in (dotted_name(keyword.value) or "")
                for keyword in call.keywords
            )
        return True
    if name.startswith(("os.exec", "os.spawn")):
        return True
    if name.startswith("subprocess."):
        return any(
            keyword.arg == "shell"
            and isinstance(keyword.value, ast.Constant)
            and bool(keyword.value.value)
            for keyword in call.keywords
        )
    return False
