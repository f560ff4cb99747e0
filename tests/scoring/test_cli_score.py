"""``sdebayes score``: the table and findings it writes, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _helpers import SAMPLE_TRACES, version
from typer.testing import CliRunner

from sdebayes.cli import app
from sdebayes.data import read_trajectories

runner = CliRunner()


def invoke(*arguments: str):
    return runner.invoke(app, ["score", *map(str, arguments)])


def test_scores_the_bundled_sample(tmp_path):
    output, details = tmp_path / "traj.csv", tmp_path / "findings.jsonl"

    result = invoke(SAMPLE_TRACES, "--output", output, "--details", details, "--workers", 1)

    assert result.exit_code == 0, result.output
    assert "scored 27 versions in 13 sessions: 1 did not parse, 0 hit the time limit" in (
        result.output
    )
    table = pd.read_csv(output)
    assert list(table.columns) == [
        "session", "strategy", "step", "security", "efficiency", "functionality", "parse_ok",
    ]  # fmt: skip
    assert len(table) == 27 and table["parse_ok"].sum() == 26
    trajectories = read_trajectories(output)
    assert list(trajectories["objective"].values) == ["security", "efficiency", "functionality"]

    records = [json.loads(line) for line in details.read_text().splitlines()]
    assert len(records) == 27
    assert {"B101", "B307"} <= {
        finding["test_id"]
        for record in records
        for finding in record.get("security", {}).get("bandit", [])
    }
    assert all(
        {"severity", "confidence", "line"} <= set(finding)
        for record in records
        for finding in record.get("security", {}).get("bandit", [])
    )
    assert {"complexity", "loop_depth", "patterns"} <= set(records[0]["efficiency"])
    assert records[0]["metadata"]["source"] == "FloridSleeves/LLMDebugger"


def test_scoring_never_runs_the_code(tmp_path, write_traces):
    marker = tmp_path / "ran.txt"
    code = f"open({str(marker)!r}, 'w').write('ran')\nimport os\nos.system('touch {marker}')\n"
    traces = write_traces(version(code=code))

    result = invoke(traces, "--output", tmp_path / "t.csv", "--workers", 1)

    assert result.exit_code == 0, result.output
    assert not marker.exists()


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (["this is not JSON"], "traces.jsonl:1: not valid JSON"),
        ([{"session": "a", "strategy": "s", "step": 0}], ":1: field 'code' is missing"),
        ([{"session": "a", "step": 0, "code": ""}], ":1: field 'strategy' is missing"),
        ([{"strategy": "s", "step": 0, "code": ""}], ":1: field 'session' is missing"),
        ([{"session": "a", "strategy": "s", "code": ""}], ":1: field 'step' is missing"),
        ([version(step=0.5)], ":1: field 'step' is 0.5, not a whole number"),
        ([version(step=0), version(step=0)], ":2: session 's1' has step 0 twice"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, write_traces, lines, match):
    output = tmp_path / "t.csv"
    details = tmp_path / "d.jsonl"

    result = invoke(write_traces(*lines), "--output", output, "--details", details, "-j", 1)

    assert result.exit_code == 2, result.output
    assert result.output.startswith("sdebayes: error: ") and match in result.output
    assert result.output.count("\n") == 1, result.output
    assert not output.exists() and not details.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "traces.jsonl"], "no temporary file left"


def test_missing_trace_file_exits_2(tmp_path):
    result = invoke(tmp_path / "nope.jsonl", "--output", tmp_path / "t.csv")

    assert result.exit_code == 2, result.output
    assert "nope.jsonl: no such file" in result.output
    assert not (tmp_path / "t.csv").exists()


def test_unwritable_output_is_refused_before_reading(tmp_path):
    result = invoke(SAMPLE_TRACES, "--output", tmp_path / "missing" / "t.csv")

    assert result.exit_code == 2, result.output
    assert "--output" in result.output and "does not exist; create it first" in result.output


def test_details_must_differ_from_output(tmp_path):
    output = tmp_path / "t.csv"

    result = invoke(SAMPLE_TRACES, "--output", output, "--details", output)

    assert result.exit_code == 2, result.output
    assert "must differ from --output" in result.output
    assert not output.exists()


def test_an_existing_output_is_replaced_only_when_complete(tmp_path, write_traces):
    output = tmp_path / "t.csv"
    output.write_text("old\n")

    failed = invoke(write_traces("{broken"), "--output", output, "-j", 1)
    assert failed.exit_code == 2, failed.output
    assert output.read_text() == "old\n"

    done = invoke(write_traces(version()), "--output", output, "-j", 1)
    assert done.exit_code == 0, done.output
    assert output.read_text().startswith("session,strategy,step,")
