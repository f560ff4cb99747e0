"""Score many program versions: in parallel processes, with a time limit and a progress bar.

:func:`score_versions` splits the versions into chunks and keeps a bounded number of chunks in
flight on a :class:`concurrent.futures.Executor`: its own process pool by default, or any
executor with the same interface (for example ``dask.distributed.Client.get_executor()``).
Inside a worker each program gets a wall-clock limit enforced with ``SIGALRM``
(:func:`signal.setitimer`), so a pathological input cannot stall the batch; a program that
kills its worker process is scored again alone and, if it kills it again, recorded as
``crashed``. The code is only ever parsed, never executed.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import math
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdebayes.scoring.program import DEFAULT_MAX_CHARS, parse_program
from sdebayes.scoring.registry import Scorer, ScorerError, available_scorers, get_scorer
from sdebayes.scoring.traces import TraceVersion

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_TIME_LIMIT",
    "ProgramScores",
    "ScoreBatch",
    "default_workers",
    "score_program",
    "score_versions",
]

logger = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT = 10.0
"""Seconds of wall-clock time one program may take before its scoring is stopped."""

MAX_CHUNK_SIZE = 64
"""Largest number of programs sent to a worker at once."""

SCORING_RECURSION_LIMIT = 1000
"""Python recursion limit while a program is scored (CPython's default). Libraries such as
PyTensor raise the process-wide limit when imported; pinning it here keeps a deeply nested
program's scores the same whatever else the process has imported."""

_Chunk = list[tuple[int, str]]


@dataclass(frozen=True)
class ProgramScores:
    """Scores of one program version and the evidence behind them.

    Parameters
    ----------
    scores : dict of str to float
        One score in [0, 10] per objective, in column order.
    parse_ok : bool
        Whether the program parsed into a non-empty syntax tree.
    status : str
        The parse status (``ok``, ``syntax_error``, ``invalid_text``, ``too_complex``,
        ``too_large``, ``empty``), or ``timeout`` when the time limit stopped the scoring, or
        ``crashed`` when the program killed its worker process twice.
    parse_error : str or None
        Why the program has no syntax tree.
    details : dict
        Per objective, the findings its scorer reported; also ``parse_warnings``.
    errors : dict of str to str
        Objectives whose scorer failed (or was stopped), with the reason; these objectives
        hold the scorer's fallback score.
    seconds : float
        Time spent on the program.
    """

    scores: dict[str, float]
    parse_ok: bool
    status: str
    parse_error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class ScoreBatch:
    """The scores of a batch of versions, in input order.

    Parameters
    ----------
    versions : tuple of TraceVersion
        The versions scored.
    results : tuple of ProgramScores
        One result per version, in the same order.
    objectives : tuple of str
        Objective names, in column order.
    seconds : float
        Wall-clock time of the batch.
    workers : int
        Worker processes used (1 means the calling process; 0 an external executor).
    """

    versions: tuple[TraceVersion, ...]
    results: tuple[ProgramScores, ...]
    objectives: tuple[str, ...]
    seconds: float
    workers: int

    @property
    def n_parse_failures(self) -> int:
        """Versions that did not parse (``parse_ok`` false)."""
        return sum(not result.parse_ok for result in self.results)

    @property
    def n_timeouts(self) -> int:
        """Versions whose scoring the time limit stopped."""
        return sum(result.status == "timeout" for result in self.results)

    @property
    def n_errors(self) -> int:
        """Versions where at least one scorer failed or the worker crashed."""
        return sum(bool(result.errors) for result in self.results)

    def table(self) -> pd.DataFrame:
        """Return the long trajectory table that ``sdebayes sample`` reads.

        Returns
        -------
        pandas.DataFrame
            Columns ``session``, ``strategy``, ``step``, one per objective (rounded to four
            decimals) and ``parse_ok``; one row per version, in input order.
        """
        import pandas as pd

        columns: dict[str, Any] = {
            "session": [version.session for version in self.versions],
            "strategy": [version.strategy for version in self.versions],
            "step": [version.step for version in self.versions],
        }
        for name in self.objectives:
            columns[name] = [round(result.scores[name], 4) for result in self.results]
        columns["parse_ok"] = [result.parse_ok for result in self.results]
        return pd.DataFrame(columns)

    def details(self) -> Iterator[dict[str, Any]]:
        """Yield one JSON-serialisable record of findings per version, in input order."""
        for version, result in zip(self.versions, self.results, strict=True):
            record: dict[str, Any] = {
                "session": version.session,
                "strategy": version.strategy,
                "step": version.step,
                "line": version.line,
                "parse_ok": result.parse_ok,
                "status": result.status,
                "parse_error": result.parse_error,
                "seconds": round(result.seconds, 5),
                "scores": {name: round(value, 4) for name, value in result.scores.items()},
                **result.details,
            }
            if result.errors:
                record["errors"] = result.errors
            if version.metadata:
                record["metadata"] = dict(version.metadata)
            yield record

    def summary(self) -> str:
        """One line: versions, sessions, parse failures, time limits, errors, seconds."""
        sessions = len({version.session for version in self.versions})
        rate = len(self.results) / self.seconds if self.seconds > 0 else float("inf")
        text = (
            f"scored {len(self.results)} versions in {sessions} sessions: "
            f"{self.n_parse_failures} did not parse, {self.n_timeouts} hit the time limit"
        )
        if self.n_errors:
            text += f", {self.n_errors} with scorer errors"
        return text + f"; {self.seconds:.1f} s ({rate:.0f} versions/s)"


def default_workers() -> int:
    """Return the number of CPUs this process may use (``os.process_cpu_count`` where available)."""
    counter = getattr(os, "process_cpu_count", None) or os.cpu_count
    return max(1, counter() or 1)


def score_program(
    code: str,
    scorers: Sequence[str | Scorer] | None = None,
    *,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> ProgramScores:
    r"""Score one program version in the calling process.

    Parameters
    ----------
    code : str
        Source text; it is parsed, never executed.
    scorers : sequence of str or Scorer, optional
        Objectives to compute, by registered name or as :class:`Scorer` objects. Default:
        every registered objective.
    time_limit : float or None, default=10.0
        Seconds after which scoring stops and the remaining objectives get their fallback
        score. Enforced only in the main thread of a process; ``None`` for no limit.
    max_chars : int, default=1_000_000
        Longer programs are not parsed (status ``too_large``).

    Returns
    -------
    ProgramScores

    Examples
    --------
    >>> result = score_program("def add(a: int, b: int) -> int:\n    return a + b\n")
    >>> result.parse_ok, sorted(result.scores)
    (True, ['efficiency', 'functionality', 'security'])
    >>> score_program("I cannot help with that.").parse_ok
    False
    """
    resolved = _resolve(scorers)
    _check_limits(time_limit, max_chars)
    with _alarm(time_limit) as use_alarm:
        return _score_one(code, resolved, time_limit if use_alarm else None, max_chars)


def score_versions(
    versions: Sequence[TraceVersion],
    scorers: Sequence[str | Scorer] | None = None,
    *,
    workers: int | None = None,
    executor: Executor | None = None,
    chunk_size: int | None = None,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    max_chars: int = DEFAULT_MAX_CHARS,
    progressbar: bool = True,
) -> ScoreBatch:
    """Score every version of a trace, in parallel.

    Parameters
    ----------
    versions : sequence of TraceVersion
        As returned by :func:`sdebayes.scoring.read_traces`.
    scorers : sequence of str or Scorer, optional
        Objectives to compute. Default: every registered objective, in registry order.
    workers : int, optional
        Worker processes. Default: the number of CPUs (:func:`default_workers`). ``1`` scores
        in the calling process, without a pool. Ignored when ``executor`` is given, except to
        size the number of chunks in flight.
    executor : concurrent.futures.Executor, optional
        Where to run the chunks instead of a new process pool, for example
        ``dask.distributed.Client(...).get_executor()``. It is not shut down. Scorers must be
        picklable, and a failure of the executor itself is raised, not recovered.
    chunk_size : int, optional
        Programs per task. Default: enough for about four chunks per worker, at most 64.
    time_limit : float or None, default=10.0
        Seconds one program may take (see :func:`score_program`); ``None`` for no limit.
    max_chars : int, default=1_000_000
        Longer programs are not parsed (status ``too_large``).
    progressbar : bool, default=True
        Show a progress bar on stderr; it is shown only on a terminal and never when the
        environment variable ``CI`` is set.

    Returns
    -------
    ScoreBatch
        Results in input order, with :meth:`ScoreBatch.table` and :meth:`ScoreBatch.details`.

    Raises
    ------
    ValueError
        If ``workers``, ``chunk_size``, ``time_limit`` or ``max_chars`` is not positive.
    ScorerError
        If an objective is unknown, or a scorer cannot be sent to worker processes.
    """
    resolved = _resolve(scorers)
    _check_limits(time_limit, max_chars)
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers={workers!r} must be a positive int; pass e.g. workers=2")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive int")
    versions = tuple(versions)
    parallelism = workers or (4 if executor is not None else default_workers())
    if executor is None:
        parallelism = min(parallelism, max(1, len(versions)))
    size = chunk_size or max(1, min(MAX_CHUNK_SIZE, math.ceil(len(versions) / (4 * parallelism))))
    chunks = [
        [(index, versions[index].code) for index in range(start, min(start + size, len(versions)))]
        for start in range(0, len(versions), size)
    ]
    task = functools.partial(
        _score_chunk, scorers=resolved, time_limit=time_limit, max_chars=max_chars
    )

    results: list[ProgramScores | None] = [None] * len(versions)
    started = time.perf_counter()
    with _progress(progressbar, len(versions)) as advance:

        def collect(chunk_results: list[tuple[int, ProgramScores]]) -> None:
            for index, result in chunk_results:
                results[index] = result
            advance(len(chunk_results))

        if executor is not None:
            _check_picklable(resolved)
            _drive(executor, task, chunks, 2 * parallelism, collect)
            used = 0
        elif parallelism == 1:
            for chunk in chunks:
                collect(task(chunk))
            used = 1
        else:
            _check_picklable(resolved)
            _run_pool(task, chunks, parallelism, collect, resolved)
            used = parallelism

    batch = ScoreBatch(
        versions=versions,
        results=tuple(result for result in results if result is not None),
        objectives=tuple(scorer.name for scorer in resolved),
        seconds=time.perf_counter() - started,
        workers=used,
    )
    if len(batch.results) != len(versions):  # a broken external executor, never silently
        raise RuntimeError(f"only {len(batch.results)} of {len(versions)} versions were scored")
    logger.debug("%s", batch.summary())
    return batch


def _resolve(scorers: Sequence[str | Scorer] | None) -> tuple[Scorer, ...]:
    if scorers is None:
        scorers = available_scorers()
    if isinstance(scorers, str | Scorer):
        scorers = [scorers]
    resolved = tuple(get_scorer(item) if isinstance(item, str) else item for item in scorers)
    if not resolved:
        raise ScorerError("no objective to score; register a scorer or pass some by name")
    names = [scorer.name for scorer in resolved]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ScorerError(f"objective(s) {repeated!r} given more than once")
    return resolved


def _check_limits(time_limit: float | None, max_chars: int) -> None:
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit={time_limit!r} must be positive seconds, or None")
    if max_chars < 1:
        raise ValueError(f"max_chars={max_chars!r} must be a positive int")


def _check_picklable(scorers: tuple[Scorer, ...]) -> None:
    for scorer in scorers:
        try:
            pickle.dumps(scorer)
        except Exception as err:
            raise ScorerError(
                f"scorer {scorer.name!r} cannot be sent to worker processes ({err}); define "
                "its function at module level (not a lambda or a local function) or use "
                "workers=1"
            ) from err


_ALARM_REPEAT = 0.05
"""Seconds between repeated alarms once a program's time limit has passed."""


class _TimeLimitReached(BaseException):
    """Raised by the SIGALRM handler; a BaseException so scorers' ``except`` keep out."""


_limit_armed = threading.Event()
"""Set while a program's time limit runs; a repeated alarm after it was cleared is ignored."""


def _on_alarm(signum: int, frame: types.FrameType | None) -> None:
    if _limit_armed.is_set() and not _exceptions_discarded_in(frame):
        raise _TimeLimitReached


def _exceptions_discarded_in(frame: types.FrameType | None) -> bool:
    """Whether an exception raised in ``frame`` would be discarded by the interpreter.

    Inside a garbage-collector callback or a ``__del__`` method an exception does not
    propagate; Python reports it as "Exception ignored" and the program runs on. The alarm
    then holds its fire and the next repeat (``_ALARM_REPEAT`` later) stops the program.
    """
    callback_codes = {
        getattr(getattr(callback, "__func__", callback), "__code__", None)
        for callback in gc.callbacks
    }
    while frame is not None:
        if frame.f_code in callback_codes or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def _alarm(time_limit: float | None) -> Iterator[bool]:
    """Install the SIGALRM handler if a limit can be enforced here; yield whether it can."""
    usable = (
        time_limit is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        if time_limit is not None:
            logger.debug("no time limit: SIGALRM is only available in a main thread on POSIX")
        yield False
        return

    previous_handler = signal.signal(signal.SIGALRM, _on_alarm)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, 0)
    started = time.monotonic()
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:  # give back a timer somebody else had set
            remaining = max(previous_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, remaining, previous_interval)


def _score_chunk(
    chunk: _Chunk, scorers: tuple[Scorer, ...], time_limit: float | None, max_chars: int
) -> list[tuple[int, ProgramScores]]:
    """Score a chunk of ``(index, code)`` pairs; runs in a worker (or the calling process)."""
    _warm_up()
    with _alarm(time_limit) as use_alarm:
        limit = time_limit if use_alarm else None
        return [(index, _score_one(code, scorers, limit, max_chars)) for index, code in chunk]


@functools.cache
def _warm_up() -> None:
    """Import bandit and radon before any timer runs, so no import is ever interrupted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from radon.visitors import ComplexityVisitor  # noqa: F401

        from sdebayes.scoring.security import _bandit

        _bandit()


@contextlib.contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    """Run with a fixed Python recursion limit, restoring the caller's afterwards."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def _score_one(
    code: str, scorers: tuple[Scorer, ...], time_limit: float | None, max_chars: int
) -> ProgramScores:
    with _recursion_limit(SCORING_RECURSION_LIMIT):
        return _score_one_unguarded(code, scorers, time_limit, max_chars)


def _score_one_unguarded(
    code: str, scorers: tuple[Scorer, ...], time_limit: float | None, max_chars: int
) -> ProgramScores:
    started = time.perf_counter()
    program = None
    scores: dict[str, float] = {}
    details: dict[str, Any] = {}
    errors: dict[str, str] = {}
    timed_out = False
    try:
        if time_limit is not None:
            # Repeat the alarm until it is cleared: an alarm that lands in a garbage-collector
            # callback (hypothesis installs one) or a ``__del__`` cannot raise there, so it
            # waits for the next repeat instead of letting the program run on unbounded.
            _limit_armed.set()
            signal.setitimer(signal.ITIMER_REAL, time_limit, _ALARM_REPEAT)
        try:
            program = parse_program(code, max_chars)
            for scorer in scorers:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        result = scorer(program)
                except Exception as err:  # RecursionError, MemoryError, a scorer's own bug
                    errors[scorer.name] = _describe(err)
                else:
                    scores[scorer.name] = result.value
                    details[scorer.name] = dict(result.details)
        finally:
            if time_limit is not None:
                _limit_armed.clear()
                signal.setitimer(signal.ITIMER_REAL, 0)
    except _TimeLimitReached:
        timed_out = True

    for scorer in scorers:
        if scorer.name not in scores:
            scores[scorer.name] = float(scorer.fallback)
            if timed_out:
                errors.setdefault(scorer.name, f"stopped by the time limit of {time_limit} s")
    if program is not None and program.parse_warnings:
        details["parse_warnings"] = list(program.parse_warnings)
    return ProgramScores(
        scores={scorer.name: scores[scorer.name] for scorer in scorers},
        parse_ok=program.parse_ok if program is not None else False,
        status="timeout" if timed_out else (program.status if program else "timeout"),
        parse_error=program.parse_error if program is not None else None,
        details=details,
        errors=errors,
        seconds=time.perf_counter() - started,
    )


def _describe(err: BaseException) -> str:
    text = " ".join(str(err).split())[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _crashed(scorers: tuple[Scorer, ...], reason: str) -> ProgramScores:
    return ProgramScores(
        scores={scorer.name: float(scorer.fallback) for scorer in scorers},
        parse_ok=False,
        status="crashed",
        errors={scorer.name: reason for scorer in scorers},
    )


def _drive(
    executor: Executor,
    task: Callable[[_Chunk], list[tuple[int, ProgramScores]]],
    chunks: Iterable[_Chunk],
    max_pending: int,
    collect: Callable[[list[tuple[int, ProgramScores]]], None],
) -> tuple[list[_Chunk], list[_Chunk]]:
    """Keep at most ``max_pending`` chunks in flight and collect their results.

    Returns
    -------
    lost, unsubmitted : list of chunks
        Both empty unless a process pool broke (:class:`BrokenProcessPool`): then ``lost``
        holds the chunks that were running and ``unsubmitted`` those never sent. Any other
        failure of a task is raised.
    """
    queue = iter(chunks)
    pending: dict[Future[list[tuple[int, ProgramScores]]], _Chunk] = {}
    lost: list[_Chunk] = []

    def submit_next() -> None:
        for chunk in queue:
            pending[executor.submit(task, chunk)] = chunk
            return

    try:
        for _ in range(max_pending):
            submit_next()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                chunk = pending.pop(future)
                try:
                    collect(future.result())
                except BrokenProcessPool:
                    lost.append(chunk)
                    continue
                if not lost:
                    submit_next()
    except BrokenProcessPool:  # raised by submit on a pool that broke meanwhile
        lost.extend(pending.values())
        pending.clear()
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    return lost, list(queue)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    # spawn: workers start clean (no inherited threads or locks) on every platform
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_ignore_interrupts,
    )


def _ignore_interrupts() -> None:
    """Leave Ctrl-C to the parent process, which cancels the batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_pool(
    task: Callable[[_Chunk], list[tuple[int, ProgramScores]]],
    chunks: list[_Chunk],
    workers: int,
    collect: Callable[[list[tuple[int, ProgramScores]]], None],
    scorers: tuple[Scorer, ...],
) -> None:
    """Run chunks on an own process pool, recovering from worker processes that die.

    When a worker dies, the chunks that were running are retried one program at a time on a
    single worker, so a second death identifies the program; it is recorded as ``crashed``.
    The chunks not yet submitted continue on a fresh pool.
    """
    remaining = chunks
    suspects: list[tuple[int, str]] = []
    while remaining:
        with _new_pool(workers) as pool:
            lost, remaining = _drive(pool, task, remaining, 2 * workers, collect)
        suspects.extend(item for chunk in lost for item in chunk)
        if lost:
            logger.warning("a worker process died; %d programs will be retried", len(suspects))

    single: ProcessPoolExecutor | None = None
    try:
        for item in suspects:
            single = single or _new_pool(1)
            lost, _ = _drive(single, task, [[item]], 1, collect)
            if lost:
                collect([(item[0], _crashed(scorers, "the worker process died twice on it"))])
                single.shutdown(wait=True)
                single = None
    finally:
        if single is not None:
            single.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _progress(requested: bool, total: int) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draw a rich progress bar on stderr when it makes sense."""
    if not (requested and total and sys.stderr.isatty() and not os.environ.get("CI")):
        yield lambda count: None
        return

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task_id = bar.add_task("scoring", total=total)
        yield lambda count: bar.advance(task_id, count)
