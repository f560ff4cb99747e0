"""Faults: Ctrl-C and kill leave no partial output, failures come before the work, seeds repeat.

The interrupt tests run ``sdebayes`` as a subprocess and send it a real signal once it is
sampling or scoring. The child is started with SIGINT at its default disposition: a
background job of a non-interactive shell inherits SIGINT ignored, and so would the child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import xarray as xr
from typer.testing import CliRunner

from sdebayes._io import atomic_path, check_output_path
from sdebayes._signals import Terminated, handle_signals, interrupted, raise_if_interrupted
from sdebayes.cli import app
from sdebayes.exceptions import OutputError

runner = CliRunner()

SDEBAYES = Path(sys.executable).with_name("sdebayes")
TRACES = Path(__file__).resolve().parents[1] / "data" / "real_traces_sample.jsonl"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """A running ``sdebayes`` command whose stderr is collected line by line."""

    def __init__(self, *args: str, cwd: Path):
        self.process = subprocess.Popen(
            [str(SDEBAYES), *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,
            start_new_session=True,  # its own process group, to find leftover workers
            env={**os.environ, "CI": "1"},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                pytest.fail(f"never printed {text!r}: {self.lines}")
            time.sleep(0.1)

    def stop(self, signum: int, timeout: float = 300) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code

    def group_is_gone(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return True
        return False


def files_in(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_sampling_writes_nothing(tmp_path, signum, code):
    output = tmp_path / "fit.nc"
    output.write_bytes(b"precious")
    child = Child(
        "sample", "--draws", "1000000", "--chains", "2", "--seed", "1", "--no-progress",
        "-o", str(output), cwd=tmp_path,
    )  # fmt: skip
    child.wait_for("compiled the model", timeout=600)
    time.sleep(2)  # well inside the million draws

    assert child.stop(signum) == code, child.lines
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    assert child.lines[-1] == f"sdebayes: error: {word}; no output was written", child.lines
    assert not any("Traceback" in line for line in child.lines), child.lines
    assert files_in(tmp_path) == {"fit.nc": b"precious"}, "no partial or temporary file"


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_compilation_stops_at_once(tmp_path, signum, code):
    """A signal while the model compiles ends the process at once, cleanly.

    Numba's LLVM layer ignores an exception raised in its callbacks: a new-user trial saw a
    kill wait for the whole compile, print a traceback, and once hang for good. That
    depended on where the signal landed and did not reproduce on demand; this test pins the
    behaviour at one moment of the compile. The model spec is new to the compile cache, so
    the compile takes far longer (over 20 s even when Numba's cache is warm) than the bound
    of 10 s on the exit."""
    output = tmp_path / "fit.nc"
    output.write_bytes(b"precious")
    spec = tmp_path / "fresh.toml"
    default = (Path(__file__).resolve().parents[1] / "models" / "hierarchical.toml").read_text()
    unique = f"diagonal_sigma = 0.35{time.time_ns() % 10**6:06d}"  # a prior never compiled
    spec.write_text(default.replace("diagonal_sigma = 0.35", unique, 1))
    child = Child(
        "sample", "--model", str(spec), "--seed", "1", "--no-progress", "-o", str(output),
        cwd=tmp_path,
    )  # fmt: skip
    child.wait_for("compiling the model", timeout=300)
    time.sleep(3)

    started = time.monotonic()
    assert child.stop(signum, timeout=60) == code, child.lines
    assert time.monotonic() - started < 10, "the exit waited for the compiler"
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    assert child.lines[-1] == f"sdebayes: error: {word}; no output was written", child.lines
    assert not any("Traceback" in line for line in child.lines), child.lines
    assert files_in(tmp_path) == {"fit.nc": b"precious", "fresh.toml": spec.read_bytes()}


def _big_trace_file(path: Path, copies: int) -> Path:
    lines = TRACES.read_text(encoding="utf-8").splitlines()
    with path.open("w", encoding="utf-8") as handle:
        for copy in range(copies):
            for line in lines:
                record = json.loads(line)
                record["session"] = f"{record['session']}-{copy}"
                handle.write(json.dumps(record) + "\n")
    return path


@pytest.mark.parametrize(
    ("signum", "code", "workers"),
    [(signal.SIGINT, 130, "1"), (signal.SIGINT, 130, "2"), (signal.SIGTERM, 143, "2")],
)
def test_interrupted_scoring_writes_nothing_and_stops_its_workers(tmp_path, signum, code, workers):
    traces = _big_trace_file(tmp_path / "traces.jsonl", copies=400)  # about 60 s of scoring
    output, details = tmp_path / "table.csv", tmp_path / "details.jsonl"
    output.write_bytes(b"precious")
    child = Child(
        "score", str(traces), "-o", str(output), "--details", str(details), "-j", workers,
        "--no-progress", "--verbose", cwd=tmp_path,
    )  # fmt: skip
    child.wait_for("read 10800 versions", timeout=120)
    time.sleep(1.5)

    assert child.stop(signum) == code, child.lines
    assert child.lines[-1].startswith("sdebayes: error: "), child.lines
    assert "no output was written" in child.lines[-1], child.lines
    assert sorted(files_in(tmp_path)) == ["table.csv", "traces.jsonl"], "no partial file"
    assert output.read_bytes() == b"precious"
    deadline = time.monotonic() + 30
    while not child.group_is_gone() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert child.group_is_gone(), "worker processes outlived the command"


@pytest.mark.slow
def test_same_seed_gives_identical_posteriors_in_two_processes(tmp_path):
    settings = ["--draws", "100", "--tune", "100", "--chains", "2", "--seed", "7"]
    for name in ("first.nc", "second.nc"):
        done = subprocess.run(
            [str(SDEBAYES), "sample", *settings, "--no-progress", "--json", "-o", name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "CI": "1"},
        )
        assert done.returncode == 0, done.stderr

    first = xr.open_datatree(tmp_path / "first.nc", engine="h5netcdf")
    second = xr.open_datatree(tmp_path / "second.nc", engine="h5netcdf")
    # Equal draws and coordinates; the attributes differ only in their creation time.
    xr.testing.assert_equal(first["posterior"].to_dataset(), second["posterior"].to_dataset())
    assert first.attrs["random_seed"] == second.attrs["random_seed"] == 7


@pytest.mark.slow
def test_strict_exits_3_with_one_chain_and_says_why(tmp_path):
    output = tmp_path / "fit.nc"
    result = runner.invoke(
        app,
        [
            *("sample", "--chains", "1", "--draws", "50", "--tune", "50", "--seed", "2"),
            *("--strict", "--json", "-o", str(output)),
        ],
    )

    assert result.exit_code == 3, result.output
    assert (
        "sdebayes: diagnostic: R-hat needs at least 2 chains, got 1: convergence cannot be "
        "checked; run --chains 4" in result.stderr
    ), result.output
    summary = json.loads(result.stdout)
    assert summary["diagnostics"]["max_rhat"] is None, "NaN is written as null"
    assert output.is_file(), "a poorly converged fit is still written"


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing/fit.nc", "the directory missing does not exist"),
        (".", "is a directory"),
        ("/dev/null", "is not a regular file"),
    ],
)
def test_unwritable_output_is_reported_before_sampling(tmp_path, monkeypatch, output, message):
    import sdebayes.data
    import sdebayes.fit

    def must_not_run(*args, **kwargs):
        raise AssertionError("sampling started")

    monkeypatch.setattr(sdebayes.fit, "fit", must_not_run)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["sample", "-o", output])

    assert result.exit_code == 2, result.output
    assert message in result.stderr


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs a virtual file system")
def test_a_directory_that_refuses_files_is_found_by_creating_one():
    with pytest.raises(OutputError, match=r"--output /proc/x\.nc: cannot create files in /proc"):
        check_output_path("/proc/x.nc")


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    destination = tmp_path / "out.csv"
    destination.write_text("old")

    with pytest.raises(KeyboardInterrupt), atomic_path(destination) as temporary:
        temporary.write_text("half")
        raise KeyboardInterrupt

    assert files_in(tmp_path) == {"out.csv": b"old"}


def test_atomic_path_reports_a_full_disk_as_output_error(tmp_path):
    destination = tmp_path / "out.csv"

    with pytest.raises(OutputError, match=r"out\.csv: cannot be written \(No space left"):
        with atomic_path(destination):
            raise OSError(28, "No space left on device")

    assert files_in(tmp_path) == {}


@pytest.fixture
def sigint_delivered():
    """Let SIGINT reach the test even when the suite runs as a background job, whose shell
    starts it with SIGINT ignored (and handle_signals keeps an ignored SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_interrupt_swallowed_by_a_library_still_blocks_the_output(tmp_path, sigint_delivered):
    destination = tmp_path / "fit.nc"

    def sampler_that_returns_partial_draws() -> str:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            return "partial"
        return "complete"

    with pytest.raises(KeyboardInterrupt), handle_signals():
        assert sampler_that_returns_partial_draws() == "partial"
        assert interrupted() == signal.SIGINT
        with atomic_path(destination) as temporary:
            temporary.write_text("partial draws")

    assert files_in(tmp_path) == {}


def test_sigterm_raises_terminated_inside_handle_signals_and_the_handler_is_restored(tmp_path):
    before = signal.getsignal(signal.SIGTERM)

    with pytest.raises(Terminated), handle_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    assert signal.getsignal(signal.SIGTERM) is before
    assert interrupted() == signal.SIGTERM  # for the code that reports it
    raise_if_interrupted()  # a later fit in the same process is not stopped
    with atomic_path(tmp_path / "later.txt") as temporary:  # later writes are not refused
        temporary.write_text("written after the interrupted block")
    assert (tmp_path / "later.txt").exists()
