"""Execute the paper-replication notebook in quick mode, as a user's fresh clone would.

The notebook runs in a scratch directory (so it cannot lean on files outside the package and
``data/``), with ``SDEBAYES_NOTEBOOK_QUICK=1`` (small draws, bootstrap and replication
counts) and the repository holding this test first on the kernel's path, so the code under
test is the code of this checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _notebooks import REPOSITORY, cell_text, run_quick

NOTEBOOK = REPOSITORY / "notebooks" / "paper_replication.ipynb"
CELL_TIMEOUT = 600  # seconds; the first fit compiles the model (30-140 s on 2 cores)
TOTAL_LIMIT = 900  # seconds; quick mode took 55-75 s on 2 shared cores (compile included)


@pytest.mark.slow
def test_replication_notebook_runs_in_quick_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inline backend draws the coverage figure into the outputs.
    notebook, seconds = run_quick(
        NOTEBOOK, tmp_path, monkeypatch, cell_timeout=CELL_TIMEOUT, mpl_backend=None
    )

    assert seconds < TOTAL_LIMIT, f"quick run took {seconds:.0f} s"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(cell_text(cell) for cell in code)
    assert "quick=True" in text
    assert f"from `{REPOSITORY / 'sdebayes'}`" in text, "the kernel imported another sdebayes"
    for strategy in ("EF", "SF", "FF", "AI"):
        assert strategy in text
    assert "convergence rate" in text
    images = [
        output
        for cell in code
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 1, "the coverage figure is missing"
