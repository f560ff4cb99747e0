"""Run a bundled notebook in quick mode, as a user's fresh clone would (shared by the tests).

The notebook runs from a copy in a scratch directory (so it can only use the package and its
bundled data), with ``SDEBAYES_NOTEBOOK_QUICK=1`` and this checkout first on the kernel's
path, so the code under test is the code of this repository.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPOSITORY = Path(__file__).resolve().parents[1]


def cell_text(cell: nbformat.NotebookNode) -> str:
    """Every text output of a cell (streams, plain text, markdown and HTML), joined."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        for kind in ("text/plain", "text/markdown", "text/html"):
            parts.append(output.get("data", {}).get(kind, ""))
    return "".join(parts)


def run_quick(
    notebook_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    cell_timeout: int,
    mpl_backend: str | None,
) -> tuple[nbformat.NotebookNode, float]:
    """Execute a copy of the notebook in ``tmp_path``; return it and the seconds it took.

    ``mpl_backend=None`` leaves the kernel's inline backend, which draws figures into the
    outputs; ``"agg"`` draws nothing there.
    """
    monkeypatch.setenv("SDEBAYES_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")])
    )
    if mpl_backend is None:
        monkeypatch.delenv("MPLBACKEND", raising=False)
    else:
        monkeypatch.setenv("MPLBACKEND", mpl_backend)
    copy = tmp_path / notebook_path.name
    shutil.copy(notebook_path, copy)
    notebook = nbformat.read(copy, as_version=4)

    started = time.perf_counter()
    client = NotebookClient(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return notebook, time.perf_counter() - started
