"""Plain helpers shared by the scoring tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAMPLE_TRACES = Path(__file__).resolve().parents[2] / "data" / "real_traces_sample.jsonl"
"""Raw LDB versions bundled with the package (see data/README.md)."""


def version(session: Any = "s1", step: Any = 0, code: Any = "x = 1\n", **extra: Any) -> dict:
    """One trace record with the required fields; ``strategy`` defaults to "security"."""
    return {
        "session": session,
        "strategy": extra.pop("strategy", "security"),
        "step": step,
        "code": code,
        **extra,
    }
