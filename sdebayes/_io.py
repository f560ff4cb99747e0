"""Safe output files: fail before the work starts, and never leave half a file behind.

Every command that writes a file checks the destination with :func:`check_output_path`
before any expensive work, then writes through :func:`atomic_path`: the data go to a
temporary file in the same directory, which replaces the destination only once it is
complete. An interrupted run (an error, Ctrl-C, a kill) leaves the old file untouched and
no partial one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sdebayes.exceptions import OutputError

__all__ = ["atomic_path", "check_output_path"]

logger = logging.getLogger(__name__)


def check_output_path(path: str | Path, option: str = "--output") -> Path:
    """Fail early if ``path`` cannot be written, before any expensive work starts.

    Parameters
    ----------
    path : str or Path
        Planned output file. An existing file may be replaced; it is only replaced once the
        new one is complete (see :func:`atomic_path`).
    option : str, default="--output"
        Name of the option that gave the path, used in error messages.

    Returns
    -------
    Path
        The path with ``~`` expanded.

    Raises
    ------
    OutputError
        If the path is a directory, its directory does not exist, or it is not writable.
    """
    path = Path(path).expanduser()
    directory = path.parent
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a directory; pass a file name inside it")
    if not directory.is_dir():
        raise OutputError(
            f"{option} {path}: the directory {directory} does not exist; create it first"
        )
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{option} {path}: not writable; choose another path")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it into place only on success.

    Parameters
    ----------
    path : str or Path
        Final destination.

    Yields
    ------
    Path
        Where to write. It is removed if the block raises, including on
        :class:`KeyboardInterrupt`, so the destination is either the complete new file or
        whatever was there before.
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        # mkstemp creates the file readable by its owner only; give it the usual permissions.
        temporary.chmod(0o666 & ~_umask())
        os.replace(temporary, path)
        logger.debug("wrote %s", path)
    finally:
        temporary.unlink(missing_ok=True)


def _umask() -> int:
    """Return the process umask (reading it requires setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
