"""Functionality scorer: structural richness counted from the syntax tree."""

from __future__ import annotations

import math

import pytest
from numpy.testing import assert_allclose

from sdebayes.scoring import parse_program
from sdebayes.scoring.functionality import (
    UNPARSED_SCORE,
    score_functionality,
    structure_counts,
)

RICH = '''
def clamp(x: float, low: float = 0.0, high: float = 1.0) -> float:
    """Limit x to [low, high]."""
    if low > high:
        raise ValueError("low must not exceed high")
    if x < low:
        return low
    return min(x, high)
'''


def functionality(code: str) -> float:
    return score_functionality(parse_program(code)).value


def test_structure_beats_a_bare_script():
    assert functionality(RICH) > functionality("print(min(max(x, 0), 1))\n") + 5


def test_score_follows_the_documented_formula():
    # one function, two if statements, returns a value, documented, fully annotated
    expected = 10 * (
        0.25 * (1 - math.exp(-1 / 2)) + 0.25 * (1 - math.exp(-2 / 4)) + 0.2 + 0.15 + 0.15
    )
    assert_allclose(functionality(RICH), expected, rtol=1e-12)


def test_counts_methods_docstrings_and_hints_without_self():
    code = '''
class Stack:
    """A stack."""

    def push(self, item: int) -> None:
        self.items.append(item)

    def pop(self):
        try:
            return self.items.pop()
        except IndexError:
            return None
'''
    counts = structure_counts(parse_program(code).tree)

    assert counts["functions"] == 2 and counts["classes"] == 1 and counts["branches"] == 1
    assert_allclose(counts["returns"], 0.5)  # push returns nothing, pop returns a value
    assert_allclose(counts["docstrings"], 1 / 3)  # the class, neither method
    assert_allclose(counts["type_hints"], 2 / 3)  # item and push's return; pop's return not


def test_returning_none_is_not_returning_a_value():
    assert structure_counts(parse_program("def f():\n    return None\n").tree)["returns"] == 0


def test_generators_count_as_returning():
    assert structure_counts(parse_program("def f():\n    yield 1\n").tree)["returns"] == 1


def test_unparsed_program_gets_the_documented_score():
    assert functionality("def f(:\n    pass") == UNPARSED_SCORE == 0.0


@pytest.mark.parametrize(
    "code",
    ["", "x = 1\n", RICH * 50, "if a:\n    pass\n" * 200, "def f():\n    pass\n" * 100],
)
def test_scores_lie_between_0_and_10(code):
    assert 0 <= functionality(code) <= 10
