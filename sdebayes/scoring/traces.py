"""Read and validate trace files: JSON Lines with one program version per line.

Each line is one JSON object with at least ``session`` (string or integer), ``strategy``
(string or integer), ``step`` (integer from 0) and ``code`` (string)::

    {"session": "task-7", "strategy": "security", "step": 0, "code": "def f(x): ..."}

Other fields are kept as metadata. Blank lines are skipped. Every problem raises
:class:`~sdebayes.exceptions.DataError` with a one-line message that names the file, the line
and the field, and says how to fix it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdebayes.exceptions import DataError

__all__ = ["MAX_STEP", "REQUIRED_FIELDS", "TraceVersion", "read_traces"]

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = ("session", "strategy", "step", "code")
"""Fields every line of a trace file must have."""

MAX_STEP = 1_000_000_000
"""Largest step accepted; larger values are almost certainly not round counters."""

_EXAMPLE = '{"session": "s1", "strategy": "security", "step": 0, "code": "..."}'


@dataclass(frozen=True)
class TraceVersion:
    """One program version read from a trace file.

    Parameters
    ----------
    session, strategy : str
        Labels, stripped of surrounding white space.
    step : int
        Round of the session, from 0.
    code : str
        The program text, unchanged.
    line : int
        Line of the trace file it came from (1-based).
    metadata : Mapping
        Every other field of the line.
    """

    session: str
    strategy: str
    step: int
    code: str
    line: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)


def read_traces(path: str | Path) -> list[TraceVersion]:
    r"""Read a JSON Lines trace file and check every line.

    Parameters
    ----------
    path : str or Path
        File with one JSON object per line (see the module description).

    Returns
    -------
    list of TraceVersion
        In file order.

    Raises
    ------
    DataError
        If the file is missing or unreadable, is not UTF-8 JSON Lines, a line lacks a required
        field or has one of the wrong type, a step is not a whole number from 0, a session has
        the same step twice or changes strategy, or the file holds no version.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "t.jsonl").write_text(
    ...     '{"session": "a", "strategy": "s", "step": 0, "code": "x = 1"}\n'
    ... )
    >>> [version.code for version in read_traces(folder / "t.jsonl")]
    ['x = 1']
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; pass the path of a JSON Lines trace file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass the path of a JSON Lines trace file")

    versions: list[TraceVersion] = []
    seen_steps: dict[tuple[str, int], int] = {}
    strategies: dict[str, tuple[str, int]] = {}
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                version = _read_line(path, number, raw)
                if version is None:
                    continue
                _check_consistent(path, version, seen_steps, strategies)
                versions.append(version)
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err}); check the path") from err

    if not versions:
        raise DataError(
            f"{path}: the file holds no version; expected one JSON object per line, e.g. {_EXAMPLE}"
        )
    logger.debug("read %d versions in %d sessions from %s", len(versions), len(strategies), path)
    return versions


def _read_line(path: Path, number: int, raw: bytes) -> TraceVersion | None:
    where = f"{path}:{number}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{where}: not UTF-8 text (byte {err.start} of the line cannot be decoded); save the "
            "file as UTF-8"
        ) from err
    if number == 1:
        text = text.removeprefix("\ufeff")
    if not text.strip():
        return None

    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{where}: not valid JSON ({err.msg}, column {err.colno}); each line must hold "
            f"one JSON object, e.g. {_EXAMPLE}"
        ) from err
    except (ValueError, RecursionError) as err:  # e.g. integers too long, nesting too deep
        raise DataError(
            f"{where}: not usable JSON ({type(err).__name__}: {str(err)[:80]}); each line must "
            f"hold one JSON object, e.g. {_EXAMPLE}"
        ) from err
    if not isinstance(record, dict):
        raise DataError(
            f"{where}: a JSON {_json_type(record)}, not an object; write one object per line "
            f"(JSON Lines), e.g. {_EXAMPLE}"
        )

    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        raise DataError(
            f"{where}: field {missing[0]!r} is missing (the line has "
            f"{_short(sorted(record))}); every line needs {', '.join(REQUIRED_FIELDS)}"
        )
    return TraceVersion(
        session=_label(where, record, "session"),
        strategy=_label(where, record, "strategy"),
        step=_step(where, record["step"]),
        code=_code(where, record["code"]),
        line=number,
        metadata={key: value for key, value in record.items() if key not in REQUIRED_FIELDS},
    )


def _label(where: str, record: dict[str, Any], name: str) -> str:
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DataError(
            f"{where}: field {name!r} is a JSON {_json_type(value)} ({_short(value)}); write "
            f'it as a string, e.g. "{name}": "a1"'
        )
    text = str(value).strip() if isinstance(value, str) else str(value)
    if not text:
        raise DataError(f"{where}: field {name!r} is empty; give every version a {name} label")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise DataError(
            f"{where}: field {name!r} holds a character with no UTF-8 encoding (position "
            f"{err.start}); use plain text labels"
        ) from err
    return text


def _step(where: str, value: Any) -> int:
    integral = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and value.is_integer():
        integral, value = True, int(value)
    if not integral:
        raise DataError(
            f"{where}: field 'step' is {_short(value)}, not a whole number; steps count the "
            'rounds of a session as JSON integers 0, 1, 2, ..., e.g. "step": 0'
        )
    if not 0 <= value <= MAX_STEP:
        raise DataError(
            f"{where}: field 'step' is {_short(value)}; steps count from 0 up to at most {MAX_STEP}"
        )
    return int(value)


def _code(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise DataError(
            f"{where}: field 'code' is a JSON {_json_type(value)}, not a string; put the program "
            'text in a string (an empty program is "")'
        )
    return value


def _check_consistent(
    path: Path,
    version: TraceVersion,
    seen_steps: dict[tuple[str, int], int],
    strategies: dict[str, tuple[str, int]],
) -> None:
    key = (version.session, version.step)
    if key in seen_steps:
        raise DataError(
            f"{path}:{version.line}: session {_short(version.session)} has step {version.step} "
            f"twice (also on line {seen_steps[key]}); each session needs one line per step"
        )
    seen_steps[key] = version.line

    strategy, first_line = strategies.setdefault(version.session, (version.strategy, version.line))
    if strategy != version.strategy:
        raise DataError(
            f"{path}:{version.line}: field 'strategy': session {_short(version.session)} changes "
            f"strategy ({_short(strategy)} on line {first_line}, {_short(version.strategy)} "
            "here); a session follows one strategy, so give each part its own session id"
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
