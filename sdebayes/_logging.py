"""Logging helpers: keep a dependency's routine messages out of sdebayes' output."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["quieted"]


@contextlib.contextmanager
def quieted(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise logger ``name`` to ``level`` for the block, then restore its own level.

    PyMC announces every forward sampling call ("Sampling: [...]") at INFO; inside a
    command that is an implementation detail, not news for the user.
    """
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(max(level, previous))
    try:
        yield
    finally:
        logger.setLevel(previous)
