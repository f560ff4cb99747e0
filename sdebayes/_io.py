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
from collections.abc import Iterable, Iterator
from pathlib import Path

from sdebayes._signals import interrupted_here
from sdebayes.exceptions import OutputError

__all__ = ["atomic_path", "check_output_path", "check_writable_directory"]

logger = logging.getLogger(__name__)


def check_output_path(
    path: str | Path, option: str = "--output", reads: Iterable[str | Path | None] = ()
) -> Path:
    """Fail early if ``path`` cannot be written, before any expensive work starts.

    Parameters
    ----------
    path : str or Path
        Planned output file. An existing file may be replaced; it is only replaced once the
        new one is complete (see :func:`atomic_path`).
    option : str, default="--output"
        Name of the option that gave the path, used in error messages.
    reads : iterable of str or Path, optional
        Files the command reads (``None`` entries are skipped). Writing over one of them would
        destroy the input, so the output must be another file.

    Returns
    -------
    Path
        The path with ``~`` expanded.

    Raises
    ------
    OutputError
        If the path is a directory or not a regular file, its directory does not exist, no
        file can be created there, or it is one of the files in ``reads``.
    """
    path = Path(path).expanduser()
    for source in reads:
        if source is not None and _same_file(path, Path(source).expanduser()):
            raise OutputError(
                f"{option} {path}: is a file this command also reads or writes; choose another path"
            )
    directory = path.parent
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a directory; pass a file name inside it")
    if not directory.is_dir():
        raise OutputError(
            f"{option} {path}: the directory {directory} does not exist; create it first"
        )
    if path.exists() and not path.is_file():
        raise OutputError(f"{option} {path}: is not a regular file; choose another path")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{option} {path}: not writable; choose another path")
    check_writable_directory(directory, f"{option} {path}")
    return path


def _same_file(first: Path, second: Path) -> bool:
    """Whether two paths name the same file, through links too if both exist."""
    try:
        return first.samefile(second)
    except OSError:
        return first.resolve() == second.resolve()


def check_writable_directory(directory: str | Path, what: str) -> None:
    """Fail unless a file can be created in ``directory``, by creating and removing one.

    Permission bits alone do not tell: they do not apply to root, and a read-only file system
    or a virtual one (``/proc``) refuses files whatever they say.

    Parameters
    ----------
    directory : str or Path
        An existing directory.
    what : str
        How the error message names the output, e.g. ``"--output results/fit.nc"``.

    Raises
    ------
    OutputError
        If no file can be created there; the message gives the operating system's reason.
    """
    try:
        handle, name = tempfile.mkstemp(prefix=".sdebayes-probe.", dir=directory)
    except OSError as err:
        raise OutputError(
            f"{what}: cannot create files in {directory} ({err.strerror or err}); choose "
            "another directory"
        ) from err
    os.close(handle)
    os.unlink(name)


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
        whatever was there before. Inside a command, a SIGINT or SIGTERM received at any
        time before the block ends also discards it (see :mod:`sdebayes._signals`).

    Raises
    ------
    OutputError
        If the temporary file cannot be created, written or moved into place (no space
        left, a read-only file system); nothing is left behind.
    """
    path = Path(path)
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _write_error(path, err) from err
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        signum = interrupted_here()
        if signum is not None:  # a library swallowed Ctrl-C; its result is partial
            raise KeyboardInterrupt(f"signal {signum} received; {path} not written")
        # mkstemp creates the file readable by its owner only; give it the usual permissions.
        temporary.chmod(0o666 & ~_umask())
        os.replace(temporary, path)
        logger.debug("wrote %s", path)
    except OSError as err:  # e.g. the disk filled up while writing
        raise _write_error(path, err) from err
    finally:
        temporary.unlink(missing_ok=True)


def _write_error(path: Path, err: OSError) -> OutputError:
    return OutputError(
        f"{path}: cannot be written ({err.strerror or err}); nothing was written there. Free "
        "some space or choose another path"
    )


def _umask() -> int:
    """Return the process umask (reading it requires setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
