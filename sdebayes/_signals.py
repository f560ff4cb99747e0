"""Ctrl-C and SIGTERM while a command runs: stop, and never let a partial result be written.

Some samplers catch :class:`KeyboardInterrupt` and return the draws they have so far (nutpie
and PyMC both do), so an interrupt does not always reach the code that would stop the
command. :func:`handle_signals` therefore records every SIGINT and SIGTERM it sees, and
:func:`sdebayes._io.atomic_path` refuses to move a finished file into place once one was
received: an interrupted run writes nothing, whichever library swallowed the interrupt.

Compilers are the exception: Numba's LLVM layer ignores an exception raised in its callbacks
and finalizers and can be left holding a lock for good. Around compilation,
:func:`exit_at_once_on_signal` makes a signal end the process on the spot instead; nothing
has been written at that point.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "Terminated",
    "exit_at_once_on_signal",
    "handle_signals",
    "interrupted",
    "interrupted_here",
    "raise_if_interrupted",
]

_received: list[int] = []
_active: list[bool] = []  # one entry per open handle_signals block
_exit_at_once: list[bool] = []  # one entry per open exit_at_once_on_signal block


class Terminated(KeyboardInterrupt):
    """Raised on SIGTERM (a plain ``kill``) while :func:`handle_signals` is active.

    A subclass of :class:`KeyboardInterrupt`, so that everything that stops cleanly on
    Ctrl-C (the samplers, the scoring pool, :func:`sdebayes._io.atomic_path`) also stops
    cleanly on ``kill``.
    """


def interrupted() -> int | None:
    """Return the first signal received inside the last :func:`handle_signals`, or ``None``.

    The record outlives the block, so that the code around it can report the interrupt.
    """
    return _received[0] if _received else None


def interrupted_here() -> int | None:
    """Like :func:`interrupted`, but ``None`` outside a :func:`handle_signals` block.

    What :func:`sdebayes._io.atomic_path` consults: an interrupt of an earlier block in a
    long-lived process (a notebook, a test session) does not stop later writes.
    """
    return interrupted() if _active else None


def raise_if_interrupted() -> None:
    """Raise again an interrupt that a library caught (call it right after such a library).

    Raises
    ------
    KeyboardInterrupt
        :class:`Terminated` for SIGTERM, if a signal was received inside the
        :func:`handle_signals` block that is running; an interrupt of an earlier block in the
        same process does not count.
    """
    signum = interrupted_here()
    if signum == signal.SIGTERM:
        raise Terminated(f"received signal {signum}")
    if signum is not None:
        raise KeyboardInterrupt


@contextlib.contextmanager
def exit_at_once_on_signal() -> Iterator[None]:
    """Inside :func:`handle_signals`, let SIGINT and SIGTERM end the process at once.

    For work that cannot be interrupted safely and leaves nothing to clean up, such as
    compiling a model: the process prints the usual one-line message and exits with
    128 + the signal number (130 for Ctrl-C, 143 for ``kill``), skipping any cleanup. Files
    that sdebayes writes only ever appear complete (:func:`sdebayes._io.atomic_path`), so no
    file is left half-written. Outside :func:`handle_signals` (a notebook) it changes
    nothing.
    """
    _exit_at_once.append(True)
    try:
        yield
    finally:
        _exit_at_once.pop()


def _exit_now(signum: int) -> None:
    word = "terminated" if signum == signal.SIGTERM else "interrupted"
    os.write(2, f"sdebayes: error: {word}; no output was written\n".encode())
    os._exit(128 + signum)


def _on_signal(signum: int, frame: Any) -> None:
    _received.append(signum)
    if _exit_at_once:
        _exit_now(signum)
    if signum == signal.SIGTERM:
        raise Terminated(f"received signal {signum}")
    raise KeyboardInterrupt


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Record SIGINT and SIGTERM and raise :class:`KeyboardInterrupt` / :class:`Terminated`.

    Only in the main thread (the only one that may install signal handlers); a SIGINT that
    the process ignores (a background job of a non-interactive shell) stays ignored.
    """
    _received.clear()
    _active.append(True)
    try:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with _handlers_installed():
            yield
    finally:
        _active.pop()


@contextlib.contextmanager
def _handlers_installed() -> Iterator[None]:
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
