"""Execute the posterior-analysis notebook in quick mode, as a user's fresh clone would.

The notebook runs in a scratch directory (so it can only use the package and its bundled
data), with ``SDEBAYES_NOTEBOOK_QUICK=1`` (2 chains of 200 draws, 100 replicated draws) and
this checkout first on the kernel's path, so the code under test is the code of this
repository.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from _notebooks import REPOSITORY, cell_text, run_quick

NOTEBOOK = REPOSITORY / "notebooks" / "posterior_analysis.ipynb"
CELL_TIMEOUT = 900  # seconds; each of the two fits compiles a model (30-140 s on 2 cores)
TOTAL_LIMIT = 1500  # seconds; quick mode took about 4 minutes on 2 shared cores
PUBLIC_MODULES = {
    "sdebayes",
    "sdebayes.contrast",
    "sdebayes.data",
    "sdebayes.datasets",
    "sdebayes.exceptions",
    "sdebayes.fit",
    "sdebayes.plots",
    "sdebayes.ppc",
    "sdebayes.report",
    "sdebayes.summary",
}


def test_notebook_imports_only_public_names():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("sdebayes"):
            assert node.module in PUBLIC_MODULES, node.module
            module = __import__(node.module, fromlist=["__all__"])
            for alias in node.names:
                assert alias.name in module.__all__, f"{node.module}.{alias.name}"


def test_committed_notebook_has_the_outputs_of_a_full_run():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), "a code cell was not run"
    text = "\n".join(cell_text(cell) for cell in code)
    assert "quick=False" in text
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))


@pytest.mark.slow
def test_posterior_notebook_runs_in_quick_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    notebook, seconds = run_quick(
        NOTEBOOK, tmp_path, monkeypatch, cell_timeout=CELL_TIMEOUT, mpl_backend="agg"
    )

    assert seconds < TOTAL_LIMIT, f"quick run took {seconds:.0f} s"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(cell_text(cell) for cell in code)
    assert "quick=True" in text
    assert f"from `{REPOSITORY / 'sdebayes'}`" in text, "the kernel imported another sdebayes"
    for needle in ("EF", "AI", "correctness", "security", "P(AI > EF)", "extreme", "MB"):
        assert needle in text, needle
    images = [
        output
        for cell in code
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 15, f"{len(images)} figures instead of 15"
