"""Efficiency scorer: complexity, loop nesting and each recognised costly pattern."""

from __future__ import annotations

import math
import textwrap

import pytest
from numpy.testing import assert_allclose

from sdebayes.scoring import parse_program
from sdebayes.scoring.efficiency import (
    UNPARSED_SCORE,
    costly_patterns,
    cyclomatic_complexity,
    loop_nesting_depth,
    score_efficiency,
)

FLAT = "def total(xs):\n    result = 0\n    for x in xs:\n        result += x\n    return result\n"

TRIPLE = textwrap.dedent(
    """
    def common(a, b, c):
        found = []
        for x in a:
            for y in b:
                for z in c:
                    if x == y == z and x not in found:
                        found.append(x)
        return found
    """
)


def efficiency(code: str) -> float:
    return score_efficiency(parse_program(code)).value


def kinds(code: str) -> list[str]:
    return [pattern["kind"] for pattern in costly_patterns(parse_program(code).tree)]


def test_triple_nested_loops_with_list_lookups_score_lower_than_a_flat_loop():
    assert efficiency(FLAT) == 10.0
    assert efficiency(TRIPLE) < efficiency(FLAT) - 3


def test_score_follows_the_documented_formula():
    details = score_efficiency(parse_program(TRIPLE)).details

    # c = 6 (3 loops, 1 if with two comparisons chained by `and`), d = 3, one `in list`
    assert (details["complexity"], details["loop_depth"]) == (6, 3)
    expected = 10 - 3 * (1 - math.exp(-1 / 10)) - 1.5 * 2 - 4 * (1 - math.exp(-1 / 3))
    assert_allclose(efficiency(TRIPLE), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("seen = []\nfor x in xs:\n    if x in seen:\n        pass\n", ["linear_search_in_loop"]),
        ("def f(xs: list[int]):\n    for x in ys:\n        x in xs\n", ["linear_search_in_loop"]),
        ("for x in xs:\n    i = ys.index(x)\n", ["linear_search_in_loop"]),
        ("while q:\n    n = q.count(0)\n", ["linear_search_in_loop"]),
        ("[x for x in xs if x in list(ys)]\n", ["linear_search_in_loop"]),
        ("seen = set()\nfor x in xs:\n    if x in seen:\n        pass\n", []),
        ("seen = []\nif x in seen:\n    pass\n", []),
        ("i = xs.index(x)\n", []),
        ("import itertools\nfor x in xs:\n    c = itertools.count()\n", []),
        (
            "for i in range(len(a)):\n    for j in range(i + 1, len(a)):\n        pass\n",
            ["nested_loop_same_sequence"],
        ),
        ("for x in a:\n    for y in a[1:]:\n        pass\n", ["nested_loop_same_sequence"]),
        ("[(x, y) for x in a for y in a]\n", ["nested_loop_same_sequence"]),
        ("for x in a:\n    for y in b:\n        pass\n", []),
        ("s = ''\nfor x in xs:\n    s += x\n", ["string_concat_in_loop"]),
        ("for x in xs:\n    s = s + 'a'\n", ["string_concat_in_loop"]),
        ("n = 0\nfor x in xs:\n    n += x\n", []),
        ("while q:\n    q.pop(0)\n", ["list_shift_in_loop"]),
        ("for x in xs:\n    out.insert(0, x)\n", ["list_shift_in_loop"]),
        ("for x in xs:\n    out.pop()\n", []),
    ],
)
def test_costly_patterns(code, expected):
    assert kinds(code) == expected


@pytest.mark.parametrize(
    ("code", "depth"),
    [
        ("x = 1\n", 0),
        (FLAT, 1),
        (TRIPLE, 3),
        ("[y for x in xs for y in x]\n", 2),
        ("for x in xs:\n    [y for y in x]\n", 2),
        ("for x in xs:\n    def f():\n        for y in ys:\n            pass\n", 1),
        ("while a:\n    while b:\n        pass\n", 2),
    ],
)
def test_loop_nesting_depth(code, depth):
    assert loop_nesting_depth(parse_program(code).tree) == depth


def test_test_asserts_do_not_add_complexity():
    code = "def f(x):\n    return x\n" + "assert f(1) == 1\n" * 30

    assert cyclomatic_complexity(parse_program(code).tree) == 1


def test_complexity_is_the_largest_block_or_the_module_body():
    branchy = "def f(x):\n" + "".join(f"    if x == {i}:\n        return {i}\n" for i in range(9))
    script = "".join(f"if x == {i}:\n    y = {i}\n" for i in range(4))

    assert cyclomatic_complexity(parse_program(branchy).tree) == 10
    assert cyclomatic_complexity(parse_program(script).tree) == 5


def test_unparsed_program_gets_the_documented_score():
    assert efficiency("for x in") == UNPARSED_SCORE


@pytest.mark.parametrize(
    "code",
    [
        "",
        FLAT,
        TRIPLE * 10,
        "".join("    " * i + f"for i{i} in xs:\n" for i in range(90)) + "    " * 90 + "pass\n",
        "s = ''\nfor x in xs:\n" + "    s += x\n    xs.index(x)\n" * 100,
    ],
)
def test_scores_lie_between_0_and_10(code):
    assert 0 <= efficiency(code) <= 10
