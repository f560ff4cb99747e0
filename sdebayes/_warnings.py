"""Warning helpers that point at the caller's code rather than at sdebayes internals."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from types import FrameType

_PACKAGE_DIR = Path(__file__).resolve().parent


def find_stacklevel() -> int:
    """Return the stack level of the first frame outside the sdebayes package.

    Returns
    -------
    int
        Value for the ``stacklevel`` argument of :func:`warnings.warn`.
    """
    level = 1
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(
        _PACKAGE_DIR
    ):
        level += 1
        frame = frame.f_back
    return level


def warn(message: str, category: type[Warning]) -> None:
    """Issue ``message`` as ``category`` attributed to the user's frame."""
    warnings.warn(message, category, stacklevel=find_stacklevel())
