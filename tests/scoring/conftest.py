"""Fixtures for the scoring tests: trace files written on the fly and a registry sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sdebayes.scoring import registry


@pytest.fixture
def write_traces(tmp_path: Path) -> Callable[..., Path]:
    """Write records (dicts are dumped as JSON, str and bytes written as they are) as lines."""

    def write(*lines: dict | str | bytes, name: str = "traces.jsonl") -> Path:
        path = tmp_path / name
        chunks = []
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            chunks.append(line if isinstance(line, bytes) else line.encode("utf-8"))
        path.write_bytes(b"\n".join(chunks) + b"\n")
        return path

    return write


@pytest.fixture
def sandbox_registry() -> Iterator[None]:
    """Let a test register or remove scorers; the registry is restored afterwards."""
    registry._ensure_loaded()
    saved = dict(registry._registry)
    try:
        yield
    finally:
        registry._registry.clear()
        registry._registry.update(saved)
        registry._loaded = True
