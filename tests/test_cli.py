"""The sample and simulate commands through Typer's test runner."""

import json

import pytest
from typer.testing import CliRunner

from sdebayes.cli import app

runner = CliRunner()

QUICK = ["--draws", "150", "--tune", "150", "--chains", "2", "--seed", "5"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_help_lists_the_commands_in_workflow_order():
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    listed = [
        line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()
    ]
    assert listed == [
        "simulate", "score", "sample", "baseline", "ppc", "contrast", "report", "compare", "sbc",
    ]  # fmt: skip


def test_version_prints_the_package_version():
    from sdebayes import __version__

    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.output == f"sdebayes {__version__}\n"


def test_simulate_writes_table_and_truth(tmp_path):
    table, truth = tmp_path / "sim.csv", tmp_path / "truth.json"
    result = invoke(
        "simulate",
        "--sessions-per-strategy",
        "2",
        "--steps",
        "3",
        "--seed",
        "4",
        "--output",
        str(table),
        "--truth",
        str(truth),
    )
    assert result.exit_code == 0, result.output
    assert (
        table.read_text().splitlines()[0]
        == "session,strategy,step,security,efficiency,functionality"
    )
    assert len(table.read_text().splitlines()) == 1 + 4 * 2 * 4
    assert set(json.loads(truth.read_text())["strategies"]) == {"EF", "SF", "FF", "AI"}


def test_simulate_rejects_unknown_preset(tmp_path):
    result = invoke("simulate", "--preset", "nope", "--output", str(tmp_path / "x.csv"))
    assert result.exit_code == 2, result.output
    assert "available: paper" in result.output
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_sample_json_reports_the_requested_strategy(tmp_path):
    output = tmp_path / "fit.nc"
    result = invoke("sample", "--strategy", "AI", *QUICK, "--output", str(output), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert list(summary["strategies"]) == ["AI"]
    assert summary["seed"] == 5
    assert summary["output"] == str(output)
    assert output.is_file()


@pytest.mark.slow
def test_sample_prints_tables(tmp_path):
    result = invoke("sample", "-s", "SF", *QUICK, "-o", str(tmp_path / "fit.nc"))
    assert result.exit_code == 0, result.output
    assert "Strategy SF" in result.stdout and "89% interval" in result.stdout
    assert "convergence rate" in result.stdout and "max R-hat" in result.stdout


@pytest.mark.slow
def test_strict_exits_3_when_diagnostics_fail(tmp_path):
    result = invoke(
        "sample",
        "--draws",
        "20",
        "--tune",
        "20",
        "--chains",
        "2",
        "--seed",
        "1",
        "-o",
        str(tmp_path / "fit.nc"),
        "--strict",
        "--json",
    )
    assert result.exit_code == 3, result.output
    assert "sdebayes: diagnostic:" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "XX"], "--strategy 'XX': not in the data; available strategies: EF, SF"),
        (["--model", "nonexistent"], "no such model file"),
        (["--objectives", "speed"], "unknown objective(s) 'speed'"),
        (["--sampler", "metropolis"], "'metropolis' is not one of nutpie, numpyro, pymc"),
        (["--draws", "0"], "Invalid value for '--draws'"),
        (["--ci-prob", "1.5"], "must lie between 0 and 1"),
    ],
)
def test_sample_bad_options_fail_before_sampling(tmp_path, args, message):
    output = tmp_path / "fit.nc"
    result = invoke("sample", *args, "--output", str(output))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not output.exists()


def test_sample_bad_data_is_one_line(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("session,strategy,step,x\na,S,0,1\na,S,0,2\n")
    result = invoke("sample", str(data), "--output", str(tmp_path / "fit.nc"))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sdebayes: error:"), result.stderr
    assert "bad.csv: line 3" in lines[0]


def test_verbose_adds_the_traceback(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("session,strategy,step,x\na,S,0,1\na,S,0,2\n")
    result = invoke("sample", str(data), "--verbose", "--output", str(tmp_path / "fit.nc"))
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_unwritable_output_is_reported_before_sampling(tmp_path):
    result = invoke("sample", "--output", str(tmp_path / "missing" / "fit.nc"))
    assert result.exit_code == 2, result.output
    assert "does not exist; create it first" in result.stderr


def test_existing_output_survives_a_failed_run(tmp_path):
    output = tmp_path / "fit.nc"
    output.write_bytes(b"precious")
    result = invoke("sample", "--strategy", "XX", "--output", str(output))
    assert result.exit_code == 2
    assert output.read_bytes() == b"precious"


def test_pytensor_blas_note_is_dropped_and_other_warnings_are_shown(capsys):
    import warnings

    from sdebayes.cli._app import _one_line_warnings
    from sdebayes.cli._common import terminal_warnings

    blas_note = "PyTensor could not link to a BLAS installation. Operations ... conda/mamba"
    for block in (_one_line_warnings, terminal_warnings):
        with block():
            warnings.warn(blas_note, UserWarning, stacklevel=1)
            warnings.warn("a user-facing warning", UserWarning, stacklevel=1)

    printed = capsys.readouterr().err
    assert "BLAS" not in printed
    assert printed.count("sdebayes: warning: a user-facing warning") == 2, printed
