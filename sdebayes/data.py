"""Read and validate trajectory tables and reduce them to transitions.

A trajectory table is a long table with one row per scored version: the columns ``session``,
``strategy`` and ``step`` and one numeric column per objective. An optional ``time`` column
gives the time of each version (default: the step number); an optional ``parse_ok`` column, as
written by ``sdebayes score``, is kept as metadata and is never an objective.

The table becomes an :class:`xarray.Dataset` with dimensions ``session``, ``step`` and
``objective``. Sessions may have different lengths or skip steps; missing versions are NaN.
Sessions and strategies are always read as strings: a numeric-looking session id is a label,
never a number.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from sdebayes._warnings import warn
from sdebayes.exceptions import DataError, DataWarning

__all__ = [
    "ID_COLUMNS",
    "MAX_STEP",
    "METADATA_COLUMNS",
    "drop_strategies_without_transitions",
    "objective_bounds",
    "read_table",
    "read_trajectories",
    "trajectories_from_frame",
    "transitions",
    "warn_constant_objectives",
]

logger = logging.getLogger(__name__)

ID_COLUMNS = ("session", "strategy", "step")
"""Columns every trajectory table must have."""

METADATA_COLUMNS = ("time", "parse_ok")
"""Optional columns that are never treated as objectives."""

MAX_STEP = 1_000_000_000
"""Largest step accepted; larger values are almost certainly not round counters."""

MAX_MAGNITUDE = 1e100
"""Largest absolute score or time accepted. The sufficient statistics hold products of
squares of scores summed over transitions, which overflow past about 1e150; no scale of
scores or times needs more than this."""

_INTEGER = re.compile(r"^[+-]?\d+(\.0*)?$")
_PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as a table of strings (CSV) or typed columns (Parquet).

    CSV cells are read as text so that validation can name the exact cell that is wrong and so
    that identifiers such as ``007`` or ``NA`` survive unchanged.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` file, a ``.parquet`` / ``.pq`` file, or a directory of Parquet partitions.

    Returns
    -------
    pandas.DataFrame
        The raw table, with ``attrs["source"]`` set to the path and ``attrs["format"]`` to
        ``"csv"`` or ``"parquet"``.

    Raises
    ------
    DataError
        If the file does not exist, is empty, or cannot be parsed.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; pass the path of a CSV or Parquet table")

    try:
        if path.is_dir() or path.suffix.lower() in _PARQUET_SUFFIXES:
            frame = _read_parquet(path)
            frame.attrs["format"] = "parquet"
        else:
            frame = _read_csv(path)
            frame.attrs["format"] = "csv"
    except OSError as err:  # no read permission, a device, an I/O error
        raise DataError(
            f"{path}: cannot be read ({err.strerror or err}); check the path and its permissions"
        ) from err

    frame.attrs["source"] = str(path)
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; pass the path of a CSV or Parquet table")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; expected a header row and one row per version")
    _check_not_binary(path)
    _check_fields(path)

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not a UTF-8 text file (byte {err.start} cannot be decoded); "
            "pass a CSV or Parquet table"
        ) from err
    except pd.errors.EmptyDataError as err:
        raise DataError(
            f"{path}: the file has no header row; expected columns {', '.join(ID_COLUMNS)}"
        ) from err
    except pd.errors.ParserError as err:
        raise DataError(
            f"{path}: cannot be parsed as CSV ({_first_line(err)}); check the quoting near "
            "that line"
        ) from err
    return frame


_SIGNATURES = (
    (b"\x89HDF\r\n\x1a\n", "a NetCDF-4/HDF5 file (a posterior?)", "pass the trajectory table"),
    (b"CDF\x01", "a NetCDF-3 file", "pass the trajectory table"),
    (b"CDF\x02", "a NetCDF-3 file", "pass the trajectory table"),
    (b"PAR1", "a Parquet file", "give it the suffix .parquet"),
    (b"PK\x03\x04", "a ZIP archive (an Excel workbook?)", "export the sheet as CSV"),
    (b"\x89PNG", "a PNG image", "pass the trajectory table"),
    (b"%PDF", "a PDF document", "pass the trajectory table"),
)


def _check_not_binary(path: Path) -> None:
    """Name the format of a binary file passed as a CSV table, before parsing fails on it."""
    with path.open("rb") as handle:
        start = handle.read(8)
    for signature, kind, fix in _SIGNATURES:
        if start.startswith(signature):
            raise DataError(f"{path}: is {kind}, not a CSV table; {fix}")


def _check_fields(path: Path) -> None:
    """Check the header and that every row has as many fields as the header.

    pandas silently renames repeated column names (``x.1``), turns the first column into an
    index when every row has one field too many, and pads short rows; all three shift or
    invent values, so they are refused here with the line number.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, skipinitialspace=True)
            header = [name.strip() for name in next(reader, [])]
            _check_header_names(path, header)
            for row in reader:
                if row and len(row) != len(header):
                    raise DataError(
                        f"{path}: line {reader.line_num} has {len(row)} field(s) but the header "
                        f"has {len(header)} ({', '.join(header)}); {_field_count_fix(header)}"
                    )
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not a UTF-8 text file (byte {err.start} cannot be decoded); "
            "pass a CSV or Parquet table"
        ) from err
    except csv.Error as err:
        raise DataError(f"{path}: cannot be parsed as CSV ({err}); save it as plain CSV") from err


def _looks_otherwise_delimited(header: Sequence[str]) -> bool:
    """Whether a header read as one field holds ``;``, tab or ``|`` separators instead."""
    return len(header) == 1 and re.search(r"[;\t|]", header[0]) is not None


def _field_count_fix(header: list[str]) -> str:
    """How to fix a row whose field count differs from the header's."""
    if _looks_otherwise_delimited(header):
        # e.g. a spreadsheet export with ';' between fields and decimal commas in values
        return (
            "the header looks delimited by something other than commas; save the table as "
            "CSV with commas between fields and points as decimal marks"
        )
    return "remove the stray or add the missing comma(s), and quote values that contain commas"


def _check_header_names(path: Path, header: list[str]) -> None:
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(
            f"{path}: line 1: column name(s) {repeated!r} appear more than once; rename them"
        )
    if header and header[0].lstrip().startswith(("{", "[")):
        raise DataError(
            f"{path}: looks like JSON (Lines), not a CSV table; score a trace file with "
            "`sdebayes score TRACES.jsonl --output table.csv` first"
        )
    if header and header[0].lstrip().startswith("<"):
        raise DataError(f"{path}: looks like XML, HTML or SVG, not a CSV table; pass a CSV table")


def _read_parquet(path: Path) -> pd.DataFrame:
    if path.is_dir() and not any(
        part.suffix.lower() in _PARQUET_SUFFIXES for part in path.rglob("*") if part.is_file()
    ):
        raise DataError(
            f"{path}: is a directory without Parquet files; pass a CSV or Parquet table, or a "
            "directory of Parquet partitions"
        )
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many unrelated types for a corrupt file
        raise DataError(
            f"{path}: cannot be read as Parquet ({_first_line(err)[:200]}); pass a Parquet "
            "file written by pandas or pyarrow, or a CSV table"
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_trajectories(path: str | Path, objectives: Sequence[str] | None = None) -> xr.Dataset:
    """Read a trajectory table and return it as a validated Dataset.

    Parameters
    ----------
    path : str or Path
        CSV or Parquet table with columns ``session``, ``strategy``, ``step`` and one numeric
        column per objective.
    objectives : sequence of str, optional
        Objective columns to use, in this order. Default: every column except ``session``,
        ``strategy``, ``step``, ``time`` and ``parse_ok``, in file order.

    Returns
    -------
    xarray.Dataset
        See :func:`trajectories_from_frame`.

    Raises
    ------
    DataError
        If the file cannot be read or fails validation; the message names the file, the row
        or column, and how to fix it.

    Examples
    --------
    >>> from sdebayes.datasets import paper_sessions_path
    >>> trajectories = read_trajectories(paper_sessions_path())
    >>> trajectories.sizes["objective"]
    3
    """
    return trajectories_from_frame(read_table(path), objectives=objectives)


def trajectories_from_frame(
    frame: pd.DataFrame, objectives: Sequence[str] | None = None, source: str | None = None
) -> xr.Dataset:
    """Validate a long trajectory table and pivot it to ``(session, step, objective)``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long table, one row per version. String cells (as read from CSV) are converted here.
    objectives : sequence of str, optional
        Objective columns to use. Default: all columns that are not identifiers or metadata.
    source : str, optional
        Name used in error messages and stored as ``attrs["source"]``. Default: the frame's
        ``attrs["source"]`` or ``"<table>"``.

    Returns
    -------
    xarray.Dataset
        ``scores`` (session, step, objective) with NaN where a session has no version at that
        step, ``time`` (session, step), and the coordinate ``strategy`` on ``session``.
        ``attrs`` hold the source, whether a time column was given and the objective names.

    Raises
    ------
    DataError
        On missing columns, non-numeric or non-finite scores, invalid or duplicate steps, a
        session whose strategy changes, or a time column that does not increase.
    """
    table = _Table(frame, source or frame.attrs.get("source", "<table>"))
    table.check_columns()
    objective_names = table.choose_objectives(objectives)

    session = table.labels("session")
    strategy = table.labels("strategy")
    step = table.steps()
    scores = np.column_stack([table.finite_numbers(name) for name in objective_names])
    has_time = "time" in frame.columns
    time = table.finite_numbers("time") if has_time else step.astype(float)

    order = np.lexsort((step, session))
    table.check_unique_steps(session, step, order)
    table.check_one_strategy_per_session(session, strategy)
    if has_time:
        table.check_increasing_time(session, time, order)

    dataset = _pivot(session, strategy, step, time, scores, objective_names)
    dataset.attrs.update(
        source=table.source,
        has_time_column=int(has_time),
        objectives=list(objective_names),
    )
    logger.debug(
        "read %d versions in %d sessions from %s",
        len(frame),
        dataset.sizes["session"],
        table.source,
    )
    return dataset


class _Table:
    """Validation of one raw table, with messages that point at file, row and column."""

    def __init__(self, frame: pd.DataFrame, source: str):
        # column names are matched as text: a frame built in memory may have 0 or 1.5 as names
        self.frame = frame.set_axis([str(name) for name in frame.columns], axis=1)
        self.source = source
        self.is_csv = frame.attrs.get("format", "csv") == "csv"

    def where(self, index: int) -> str:
        """Describe row ``index`` (0-based) as a reader of the file would find it."""
        if self.is_csv:
            return f"line {index + 2}"
        return f"row {index + 1}"

    def fail(self, message: str) -> DataError:
        return DataError(f"{self.source}: {message}")

    def check_columns(self) -> None:
        columns = [str(column) for column in self.frame.columns]
        missing = [name for name in ID_COLUMNS if name not in columns]
        if missing:
            hint = ""
            if _looks_otherwise_delimited(columns):
                hint = (
                    " (the header looks delimited by something other than commas; save it as CSV)"
                )
            raise self.fail(
                f"missing column(s) {', '.join(map(repr, missing))}; the table has "
                f"{columns!r}{hint}. Every table needs the columns session, strategy, step "
                "and one column per objective"
            )

        duplicated = sorted({name for name in columns if columns.count(name) > 1})
        if duplicated:
            raise self.fail(f"column name(s) {duplicated!r} appear more than once; rename them")

        if len(self.frame) == 0:
            raise self.fail("the table has a header but no rows; add one row per scored version")

    def choose_objectives(self, objectives: Sequence[str] | None) -> list[str]:
        available = [
            str(name)
            for name in self.frame.columns
            if name not in ID_COLUMNS and name not in METADATA_COLUMNS
        ]
        if objectives is None:
            chosen = available
        else:
            chosen = [str(name).strip() for name in objectives]
            unknown = [name for name in chosen if name not in available]
            if unknown:
                raise self.fail(
                    f"unknown objective(s) {', '.join(map(repr, unknown))}; "
                    f"available objectives: {', '.join(available) or 'none'}"
                )
            repeated = sorted({name for name in chosen if chosen.count(name) > 1})
            if repeated:
                raise self.fail(
                    f"objective(s) {repeated!r} selected more than once; list each once"
                )

        if not chosen:
            raise self.fail(
                "no objective columns: besides session, strategy and step the table needs "
                "at least one numeric column of scores"
            )
        return chosen

    def labels(self, column: str) -> np.ndarray:
        values = self.frame[column]
        if values.isna().any():
            index = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise self.fail(
                f"{self.where(index)}, column {column!r}: the value is missing; give every row "
                f"a {column} label"
            )

        text = values.astype(str).str.strip().to_numpy(dtype=object)
        empty = np.flatnonzero(text == "")
        if empty.size:
            raise self.fail(
                f"{self.where(int(empty[0]))}, column {column!r}: the value is empty; give every "
                f"row a {column} label"
            )
        return text.astype(str)

    def steps(self) -> np.ndarray:
        values = self.frame["step"]
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        text = values.astype(str).str.strip()
        looks_integer = text.str.match(_INTEGER).to_numpy() if self.is_csv else None

        for index in range(len(numbers)):
            number = numbers[index]
            integral = np.isfinite(number) and float(number).is_integer()
            if looks_integer is not None:
                integral = integral and bool(looks_integer[index])
            if not integral:
                raise self.fail(
                    f"{self.where(index)}, column 'step': {values.iloc[index]!r} is not a whole "
                    "number; steps count the rounds of a session as 0, 1, 2, ..."
                )
            if number < 0:
                raise self.fail(
                    f"{self.where(index)}, column 'step': {values.iloc[index]!r} is negative; "
                    "steps count from 0"
                )
            if number > MAX_STEP:
                raise self.fail(
                    f"{self.where(index)}, column 'step': {values.iloc[index]!r} is too large; "
                    f"steps count the rounds of a session, from 0 up to at most {MAX_STEP}"
                )
        return numbers.astype(np.int64)

    def finite_numbers(self, column: str) -> np.ndarray:
        values = self.frame[column]
        if values.dtype == bool:
            values = values.astype(float)
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)

        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            index = int(bad[0])
            raw = values.iloc[index]
            reason = "is not a number" if np.isnan(numbers[index]) else "is not finite"
            raise self.fail(
                f"{self.where(index)}, column {column!r}: {raw!r} {reason} "
                f"({bad.size} such cell(s) in this column); fix or remove these rows, or leave "
                "the column out with --objectives"
            )

        huge = np.flatnonzero(np.abs(numbers) > MAX_MAGNITUDE)
        if huge.size:
            index = int(huge[0])
            raise self.fail(
                f"{self.where(index)}, column {column!r}: {values.iloc[index]!r} is too large "
                f"(beyond +-{MAX_MAGNITUDE:g}, {huge.size} such cell(s) in this column); fix "
                "these rows or rescale the column"
            )
        return numbers

    def check_unique_steps(self, session: np.ndarray, step: np.ndarray, order: np.ndarray):
        same = (session[order][1:] == session[order][:-1]) & (step[order][1:] == step[order][:-1])
        if same.any():
            first, second = sorted(order[[np.flatnonzero(same)[0], np.flatnonzero(same)[0] + 1]])
            raise self.fail(
                f"{self.where(int(second))}: session {str(session[first])!r} has step "
                f"{int(step[first])} twice (also on {self.where(int(first))}); each session "
                "needs one row per step"
            )

    def check_one_strategy_per_session(self, session: np.ndarray, strategy: np.ndarray):
        pairs = pd.DataFrame({"session": session, "strategy": strategy})
        counts = pairs.groupby("session", sort=False)["strategy"].nunique()
        changed = counts[counts > 1]
        if len(changed):
            name = changed.index[0]
            rows = np.flatnonzero(session == name)
            seen = list(dict.fromkeys(strategy[rows]))
            switch = rows[np.flatnonzero(strategy[rows] != strategy[rows[0]])[0]]
            raise self.fail(
                f"{self.where(int(switch))}: session {str(name)!r} changes strategy "
                f"({' -> '.join(seen)}); a session follows one strategy, so give each part "
                "its own session id"
            )

    def check_increasing_time(self, session: np.ndarray, time: np.ndarray, order: np.ndarray):
        same = session[order][1:] == session[order][:-1]
        not_increasing = same & (np.diff(time[order]) <= 0)
        if not_increasing.any():
            index = int(order[np.flatnonzero(not_increasing)[0] + 1])
            raise self.fail(
                f"{self.where(index)}, column 'time': {float(time[index])!r} does not increase "
                f"within session {str(session[index])!r}; time must grow strictly with step"
            )


def _pivot(
    session: np.ndarray,
    strategy: np.ndarray,
    step: np.ndarray,
    time: np.ndarray,
    scores: np.ndarray,
    objectives: list[str],
) -> xr.Dataset:
    session_codes, session_names = pd.factorize(session)
    step_values = np.unique(step)
    step_codes = np.searchsorted(step_values, step)

    shape = (len(session_names), len(step_values))
    score_grid = np.full((*shape, len(objectives)), np.nan)
    score_grid[session_codes, step_codes] = scores
    time_grid = np.full(shape, np.nan)
    time_grid[session_codes, step_codes] = time

    session_strategy = np.empty(len(session_names), dtype=object)
    session_strategy[session_codes] = strategy
    return xr.Dataset(
        {
            "scores": (("session", "step", "objective"), score_grid),
            "time": (("session", "step"), time_grid),
        },
        coords={
            "session": np.asarray(session_names, dtype=str),
            "step": step_values,
            "objective": np.asarray(objectives, dtype=str),
            "strategy": ("session", session_strategy.astype(str)),
        },
    )


def transitions(trajectories: xr.Dataset) -> xr.Dataset:
    """List the one-step transitions of every session.

    A transition joins two consecutive observed versions of the same session; the last
    version of one session is never joined to the first of the next.

    Parameters
    ----------
    trajectories : xarray.Dataset
        As returned by :func:`read_trajectories`.

    Returns
    -------
    xarray.Dataset
        Along dimension ``transition``: ``state`` (transition, objective) the scores before the
        step, ``change`` the difference to the next version, ``dt`` the elapsed time, and the
        coordinates ``session`` and ``strategy``.

    Examples
    --------
    >>> from sdebayes.datasets import paper_sessions_path
    >>> steps = transitions(read_trajectories(paper_sessions_path()))
    >>> int(steps.sizes["transition"])
    4000
    """
    scores = trajectories["scores"].to_numpy()
    time = trajectories["time"].to_numpy()
    observed = np.isfinite(time)

    session_index, step_index = np.nonzero(observed)
    joined = session_index[1:] == session_index[:-1]
    start = (session_index[:-1][joined], step_index[:-1][joined])
    end = (session_index[1:][joined], step_index[1:][joined])

    sessions = trajectories["session"].to_numpy()[start[0]]
    strategies = trajectories["strategy"].to_numpy()[start[0]]
    return xr.Dataset(
        {
            "state": (("transition", "objective"), scores[start]),
            "change": (("transition", "objective"), scores[end] - scores[start]),
            "dt": ("transition", time[end] - time[start]),
        },
        coords={
            "objective": trajectories["objective"].to_numpy(),
            "session": ("transition", sessions),
            "strategy": ("transition", strategies),
        },
        attrs=dict(trajectories.attrs),
    )


def objective_bounds(trajectories: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest observed score of each objective (the default score range)."""
    scores = trajectories["scores"]
    dims = [dim for dim in scores.dims if dim != "objective"]
    return scores.min(dims).to_numpy(), scores.max(dims).to_numpy()


def drop_strategies_without_transitions(
    trajectories: xr.Dataset, requested: Sequence[str] | None = None
) -> xr.Dataset:
    """Leave out, with a warning, the strategies none of whose sessions has two versions.

    Such a strategy has no transition, so it says nothing about the dynamics and cannot be
    fitted; the other strategies can.

    Parameters
    ----------
    trajectories : xarray.Dataset
        As returned by :func:`read_trajectories`.
    requested : sequence of str, optional
        Strategies the user asked for by name; one of them without transitions is an error.

    Returns
    -------
    xarray.Dataset
        ``trajectories`` without the sessions of those strategies (the same object if there
        are none).

    Raises
    ------
    DataError
        If a requested strategy, or every strategy, has no transitions.

    Warns
    -----
    DataWarning
        Naming each strategy that is left out.
    """
    observed = np.isfinite(trajectories["time"].to_numpy()).sum(axis=1)
    strategy = trajectories["strategy"].to_numpy().astype(str)
    names = list(map(str, dict.fromkeys(strategy)))
    empty = [name for name in names if not (observed[strategy == name] >= 2).any()]
    if not empty:
        return trajectories

    source = trajectories.attrs.get("source", "the data")
    listed = ", ".join(map(repr, empty))
    fix = "add sessions with two or more versions, or remove their rows"
    asked = [name for name in requested or () if name in empty]
    if asked:
        raise DataError(
            f"{source}: strategy(ies) {', '.join(map(repr, asked))} have no transitions (every "
            f"session has a single version), so they cannot be fitted; {fix}"
        )
    if len(empty) == len(names):
        raise DataError(
            f"{source}: no strategy has a transition (every session has a single version); {fix}"
        )
    warn(
        f"{source}: strategy(ies) {listed} have no transitions (every session has a single "
        f"version) and are left out of the fit; {fix}",
        DataWarning,
    )
    return trajectories.isel(session=~np.isin(strategy, empty))


def warn_constant_objectives(trajectories: xr.Dataset) -> list[tuple[str, str]]:
    """Warn about objectives that never change from one version to the next in a strategy.

    The fit still works (the model's diffusion floor keeps the covariance positive definite),
    but that objective's diffusion is then the floor, its row of the drift matrix is pinned at
    whatever keeps it constant, and its correlations with the others are not identified.

    Parameters
    ----------
    trajectories : xarray.Dataset
        As returned by :func:`read_trajectories`.

    Returns
    -------
    list of tuple of str
        The ``(strategy, objective)`` pairs warned about.

    Warns
    -----
    DataWarning
        One per strategy with such objectives, naming them.
    """
    steps = transitions(trajectories)
    change = steps["change"].to_numpy()
    strategy = steps["strategy"].to_numpy().astype(str)
    objectives = steps["objective"].to_numpy().astype(str)
    source = trajectories.attrs.get("source", "the data")

    found: list[tuple[str, str]] = []
    for name in map(str, dict.fromkeys(strategy)):
        constant = (change[strategy == name] == 0).all(axis=0)
        if not constant.any():
            continue
        names = [str(objective) for objective in objectives[constant]]
        found.extend((name, objective) for objective in names)
        warn(
            f"{source}: objective(s) {', '.join(map(repr, names))} never change within strategy "
            f"{name!r} ({int((strategy == name).sum())} transitions); the fit holds their "
            "diffusion at the model's floor and their intervals mean little. Check the scores, "
            "or leave the objective out with --objectives",
            DataWarning,
        )
    return found
