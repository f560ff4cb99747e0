"""Safety: scored programs are never run, user files are never unpickled or evaluated.

The static checks read the source of the whole package with :mod:`ast`, so a new module that
calls ``eval`` or unpickles a file fails here before review.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import sdebayes
from sdebayes.cli import app
from sdebayes.scoring import score_program

runner = CliRunner()

PACKAGE = Path(sdebayes.__file__).resolve().parent
SOURCES = sorted(PACKAGE.rglob("*.py"))

FORBIDDEN_CALLS = {
    "eval": "evaluates a string as code",
    "exec": "executes a string as code",
    "compile": "compiles a string to code (use ast.parse to read a program)",
    "__import__": "imports a module chosen at run time",
    "breakpoint": "stops in a debugger",
}
"""Built-in functions no module may call."""

FORBIDDEN_ATTRIBUTES = {
    ("pickle", "load"): "unpickling runs code from the file",
    ("pickle", "loads"): "unpickling runs code from the data",
    ("pickle", "Unpickler"): "unpickling runs code from the file",
    ("marshal", "load"): "loads code objects",
    ("marshal", "loads"): "loads code objects",
    ("shelve", "open"): "unpickles its values",
    ("yaml", "load"): "can construct arbitrary objects (use safe_load)",
    ("yaml", "unsafe_load"): "constructs arbitrary objects",
    ("pd", "read_pickle"): "unpickles the file",
    ("pandas", "read_pickle"): "unpickles the file",
    ("os", "system"): "runs a shell",
    ("os", "popen"): "runs a shell",
    ("runpy", "run_path"): "executes a file",
    ("importlib", "import_module"): "imports a module chosen at run time",
}
"""``module.function`` calls no module may make."""

FORBIDDEN_MODULES = {"subprocess", "dill", "cloudpickle", "joblib", "toml", "tomli", "shelve"}
"""Modules no module may import (TOML is read with the standard library's tomllib)."""

OPENERS = {"open_datatree", "open_dataset", "open_mfdataset", "load_dataset", "File", "Dataset"}
"""Functions that open NetCDF/HDF5 files; they must be called read-only."""


def parsed() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in SOURCES]


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"


def test_the_scan_sees_the_whole_package():
    names = {path.name for path in SOURCES}
    assert {"data.py", "io_netcdf.py", "specs.py", "traces.py", "batch.py", "_app.py"} <= names


def dangerous_calls(tree: ast.Module) -> list[tuple[int, str]]:
    """Calls that evaluate, unpickle or run code, or open NetCDF/HDF5 files writable."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id in FORBIDDEN_CALLS:
            found.append((node.lineno, f"{function.id}() {FORBIDDEN_CALLS[function.id]}"))
        if not isinstance(function, ast.Attribute):
            continue
        if isinstance(function.value, ast.Name):
            key = (function.value.id, function.attr)
            if key in FORBIDDEN_ATTRIBUTES:
                found.append((node.lineno, f"{'.'.join(key)}() {FORBIDDEN_ATTRIBUTES[key]}"))
        for keyword in node.keywords:
            if keyword.arg == "allow_pickle" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                found.append((node.lineno, f"{function.attr}(allow_pickle=...) unpickles"))
        if function.attr in OPENERS:
            modes = [keyword.value for keyword in node.keywords if keyword.arg == "mode"]
            if function.attr in {"File", "Dataset"} and len(node.args) > 1:
                modes.append(node.args[1])
            found += [
                (node.lineno, f"{function.attr}(mode={ast.unparse(mode)}) opens writable")
                for mode in modes
                if not (isinstance(mode, ast.Constant) and mode.value == "r")
            ]
    return found


def test_the_scan_finds_what_it_forbids():
    source = (
        "eval(text)\n"
        "exec(text)\n"
        "pickle.loads(data)\n"
        "pd.read_pickle(path)\n"
        "np.load(path, allow_pickle=True)\n"
        "xr.open_datatree(path, mode='a')\n"
        "h5py.File(path, 'r+')\n"
        "re.compile(pattern)\n"  # not the built-in
        "xr.open_dataset(path, engine='h5netcdf')\n"  # read-only by default
    )
    lines = [line for line, _ in dangerous_calls(ast.parse(source))]
    assert lines == [1, 2, 3, 4, 5, 6, 7]


def test_no_module_evaluates_unpickles_runs_code_or_opens_netcdf_writable():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {message}"
        for path, tree in parsed()
        for line, message in dangerous_calls(tree)
    ]
    assert not found, "\n".join(found)


def test_no_module_imports_a_module_that_runs_or_unpickles_code():
    found = []
    for path, tree in parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            found += [
                f"{where(path, node)}: imports {name}"
                for name in modules
                if name.split(".")[0] in FORBIDDEN_MODULES
            ]
    assert not found, "\n".join(found)


def test_pickle_is_only_used_to_check_that_scorers_can_be_sent_to_workers():
    uses = [
        (where(path, node), node.attr)
        for path, tree in parsed()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "pickle"
    ]
    assert {attribute for _, attribute in uses} <= {"dumps", "PicklingError"}, uses


def test_model_files_are_read_with_tomllib():
    source = (PACKAGE / "specs.py").read_text(encoding="utf-8")
    assert "tomllib.loads(" in source


def test_load_posterior_opens_the_file_read_only(tmp_path, monkeypatch):
    import h5netcdf
    from test_ppc import synthetic_fit

    from sdebayes.io_netcdf import load_posterior, save_posterior

    path = save_posterior(synthetic_fit(n_sessions=3, n_steps=2, n_draws=10), tmp_path / "f.nc")
    before = path.read_bytes()
    modes = []
    original = h5netcdf.File.__init__

    def record(self, path, mode="r", *args, **kwargs):
        modes.append(mode)
        original(self, path, mode, *args, **kwargs)

    monkeypatch.setattr(h5netcdf.File, "__init__", record)
    load_posterior(path, groups=("posterior", "observed_data", "constant_data"))

    assert modes and set(modes) == {"r"}, modes
    assert path.read_bytes() == before


# --- scoring ----------------------------------------------------------------------------------

HOSTILE = [
    "open({marker!r}, 'w').write('ran at import')\n",
    "import os\nos.system('touch {marker}')\n",
    "__import__('pathlib').Path({marker!r}).write_text('ran')\n",
    "eval(compile(\"open({marker!r}, 'w')\", 'x', 'exec'))\n",
    "import planted\n",  # a module beside the trace file that writes the marker when imported
    "if __name__ == '__main__':\n    open({marker!r}, 'w')\n",
    "def test_it():\n    open({marker!r}, 'w')\n\nclass T:\n    def __del__(self):\n"
    "        open({marker!r}, 'w')\n",
]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_scoring_never_executes_imports_or_evaluates_the_programs(tmp_path, monkeypatch, workers):
    marker = tmp_path / "ran.txt"
    (tmp_path / "planted.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    traces = tmp_path / "traces.jsonl"
    with traces.open("w", encoding="utf-8") as handle:
        for step, template in enumerate(HOSTILE):
            code = template.format(marker=str(marker))
            record = {"session": "s", "strategy": "a", "step": step, "code": code}
            handle.write(json.dumps(record) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    result = runner.invoke(app, ["score", "traces.jsonl", "-o", "table.csv", "-j", workers])

    assert result.exit_code == 0, result.output
    assert not marker.exists(), f"a scored program ran: {marker.read_text()}"
    table = pd.read_csv(tmp_path / "table.csv")
    assert len(table) == len(HOSTILE)
    assert table["parse_ok"].all()


SLOW_PROGRAM = "\n".join(f"eval('x{i}')" for i in range(6000))
"""Parses quickly but takes bandit several seconds (about 15 s for 20,000 such lines)."""


def test_the_time_limit_stops_a_pathological_program():
    started = time.perf_counter()
    result = score_program(SLOW_PROGRAM, time_limit=0.3)
    elapsed = time.perf_counter() - started

    assert result.status == "timeout", result
    assert any("time limit of 0.3 s" in reason for reason in result.errors.values()), result
    assert all(0 <= value <= 10 for value in result.scores.values())
    assert elapsed < 3.0, f"the limit of 0.3 s took {elapsed:.1f} s to act"


def test_the_score_command_applies_the_time_limit_and_goes_on(tmp_path):
    traces = tmp_path / "traces.jsonl"
    records = [
        {"session": "s", "strategy": "a", "step": 0, "code": SLOW_PROGRAM},
        {"session": "s", "strategy": "a", "step": 1, "code": "x = 1\n"},
    ]
    traces.write_text("".join(json.dumps(record) + "\n" for record in records))

    result = runner.invoke(
        app, ["score", str(traces), "-o", str(tmp_path / "t.csv"), "-j", "1", "--time-limit", "0.3"]
    )

    assert result.exit_code == 0, result.output
    assert "1 hit the time limit" in result.stderr, result.output
    assert len(pd.read_csv(tmp_path / "t.csv")) == 2
