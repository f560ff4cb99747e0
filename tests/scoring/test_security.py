"""Security scorer: bandit findings, the penalty formula and defensive-practice signals."""

from __future__ import annotations

import math
import textwrap

import pytest
from numpy.testing import assert_allclose

from sdebayes.scoring import parse_program
from sdebayes.scoring.security import (
    UNPARSED_SCORE,
    bandit_findings,
    findings_penalty,
    score_security,
)

CLEAN = textwrap.dedent(
    """
    def parse_age(text: str) -> int:
        if not text.isdigit():
            raise ValueError(f"not an age: {text!r}")
        return int(text)
    """
)

RISKY = textwrap.dedent(
    """
    import subprocess

    def run():
        value = eval(input())
        subprocess.call(f"echo {value}", shell=True)
    """
)


def security(code: str) -> float:
    return score_security(parse_program(code)).value


def test_dangerous_program_scores_lower_than_clean_one():
    assert security(RISKY) < security(CLEAN) - 4


def test_findings_carry_bandit_test_ids_severity_and_confidence():
    details = score_security(parse_program(RISKY)).details

    found = {(item["test_id"], item["severity"], item["confidence"]) for item in details["bandit"]}
    assert found == {("B404", "LOW", "HIGH"), ("B307", "MEDIUM", "HIGH"), ("B602", "HIGH", "HIGH")}
    assert [call["call"] for call in details["dangerous_calls"]] == ["eval", "subprocess.call"]


def test_score_follows_the_documented_formula():
    # B404 (LOW, HIGH) = 1, B307 (MEDIUM, HIGH) = 3, B602 (HIGH, HIGH) = 6: P = 10
    # v = 0.5 (run has no parameters), h = 0.5 (no handler), d = 0 (two dangerous calls)
    expected = 8 * math.exp(-10 / 6) + 2 * (0.5 + 0.5 + 0.0) / 3
    assert_allclose(security(RISKY), expected, rtol=1e-12)


def test_repeated_findings_of_one_test_are_damped():
    one = [{"test_id": "B101", "severity": "LOW", "confidence": "HIGH"}]
    five = one * 5

    assert_allclose(findings_penalty(one), 1.0, rtol=1e-12)
    assert_allclose(findings_penalty(five), 1 + math.log(5), rtol=1e-12)


def test_nosec_comments_in_scored_code_are_ignored():
    flagged = "import os\nos.system(input())\n"
    hidden = "import os\nos.system(input())  # nosec\n"

    assert_allclose(security(hidden), security(flagged), rtol=1e-12)


def test_specific_exception_handling_beats_a_bare_except():
    specific = "try:\n    x = int(s)\nexcept ValueError:\n    x = 0\n"
    broad = "try:\n    x = int(s)\nexcept Exception:\n    x = 0\n"

    assert security(specific) > security(broad)


def test_input_validation_raises_the_score():
    checked = "def f(x):\n    if x < 0:\n        raise ValueError(x)\n    return x\n"
    unchecked = "def f(x):\n    return x\n"

    assert security(checked) > security(unchecked)
    assert score_security(parse_program(checked)).details["input_validation"] == 1.0


@pytest.mark.parametrize(
    "code",
    [
        "from os import system as run\nrun(cmd)\n",
        "import pickle as p\np.loads(data)\n",
        "import yaml\nyaml.load(text)\n",
        "exec(source)\n",
    ],
)
def test_dangerous_calls_are_found_through_aliases(code):
    assert score_security(parse_program(code)).details["dangerous_calls"]


def test_safe_yaml_loader_is_not_a_dangerous_call():
    code = "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)\n"

    assert score_security(parse_program(code)).details["dangerous_calls"] == []


def test_unparsed_program_gets_the_documented_score():
    result = score_security(parse_program("Here is the fixed code:"))

    assert result.value == UNPARSED_SCORE
    assert result.details == {"rule": "unparsed", "status": "syntax_error"}


def test_invalid_escape_sequences_do_not_warn():
    # filterwarnings=error turns the SyntaxWarning of "\d" into a failure if it escapes
    findings, errors = bandit_findings("import re\npattern = re.compile('\\d+')\n")

    assert findings == [] and errors == []


@pytest.mark.parametrize(
    "code",
    [
        "",
        "x = 1\n",
        RISKY * 20,
        "import pickle, marshal, subprocess, os\n" + "os.system(x)\neval(y)\n" * 50,
        "try:\n    pass\nexcept:\n    pass\n" * 30,
    ],
)
def test_scores_lie_between_0_and_10(code):
    assert 0 <= security(code) <= 10
