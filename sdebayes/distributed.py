r"""Sufficient statistics of partitioned data, computed on a Dask cluster.

The likelihood needs only per-strategy sums (:mod:`sdebayes.sufficient_stats`), so a table of
any size can be reduced where it lies, and the fit itself stays small. Every partition is read
and validated by a worker, which returns *uncentred* moment sums of its transitions: per
strategy and time step the count and the sums of :math:`u`, :math:`\Delta x`,
:math:`u u^\top`, :math:`u\,\Delta x^\top` and :math:`\Delta x\,\Delta x^\top`, where
:math:`u = x - k` is the state measured from a reference point :math:`k` (the partition's
mean score); and over all versions the count, sums and squares of the scores for the
standardisation. Sums about different reference points are merged exactly by a shift, in a
tree on the cluster, and only at the end are they standardised and centred at each strategy's
mean, algebraically. The result is the Dataset of
:func:`sdebayes.sufficient_stats.sufficient_statistics` (equal to rounding error).

Inputs
------
* A directory of Parquet files, optionally hive-partitioned (``strategy=EF/part-0.parquet``),
  read as one dask DataFrame partition per file (:func:`dask.dataframe.from_map`).
* A Zarr store of the Dataset that :func:`sdebayes.data.read_trajectories` returns, chunked
  along ``session`` (:func:`write_zarr`), read with :func:`xarray.open_zarr` as dask arrays.
* A dask DataFrame whose partitions each hold whole sessions.

**Every session must lie in a single partition**: a transition joins two versions of one
session, and a worker sees only its partition. Write the table partitioned by session
(:func:`write_parquet_partitions`, or ``frame.shuffle("session").to_parquet(...)`` with
dask). A session found in two partitions stops the computation with a :class:`DataError`
naming it and both partitions. A Zarr store holds one session per row, so it cannot split one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from sdebayes.data import ID_COLUMNS, METADATA_COLUMNS, trajectories_from_frame, transitions
from sdebayes.exceptions import DataError, SdebayesError
from sdebayes.sufficient_stats import statistics_dataset

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from sdebayes.fit import DataDescription

__all__ = [
    "connect",
    "distributed_statistics",
    "is_zarr_store",
    "write_parquet_partitions",
    "write_zarr",
]

logger = logging.getLogger(__name__)

_FAN_IN = 8
"""Partial results merged by one task of the reduction tree."""


@contextlib.contextmanager
def connect(address: str, timeout: float = 10.0) -> Iterator[Client]:
    """Connect to a Dask scheduler, and close the connection afterwards.

    Parameters
    ----------
    address : str
        Scheduler address, e.g. ``tcp://10.0.0.5:8786`` (as printed by ``dask scheduler``).
    timeout : float, default=10.0
        Seconds to wait for the scheduler.

    Yields
    ------
    distributed.Client

    Raises
    ------
    SdebayesError
        If no scheduler answers at ``address``.
    """
    from distributed import Client

    try:
        client = Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as err:
        raise SdebayesError(
            f"--dask-scheduler {address!r}: cannot connect ({_first_line(err)}); start one "
            "with `dask scheduler` and workers with `dask worker ADDRESS`, then pass the "
            "address it prints, e.g. tcp://10.0.0.5:8786"
        ) from err
    with client:
        yield client


def is_zarr_store(path: str | Path) -> bool:
    """Whether ``path`` is a Zarr store (a directory with ``zarr.json`` or ``.zgroup``)."""
    path = Path(path)
    return path.is_dir() and ((path / "zarr.json").is_file() or (path / ".zgroup").is_file())


def distributed_statistics(
    data: str | Path | dd.DataFrame,
    objectives: Sequence[str] | None = None,
    *,
    client: Client | None = None,
    standardize: bool = True,
    centre_states: bool = True,
) -> tuple[xr.Dataset, DataDescription]:
    """Compute the sufficient statistics of partitioned data on a Dask cluster.

    Parameters
    ----------
    data : str, Path or dask.dataframe.DataFrame
        A directory of Parquet files (or one Parquet file), a Zarr store written by
        :func:`write_zarr`, or a dask DataFrame with the columns of a trajectory table. Every
        session must lie in one partition.
    objectives : sequence of str, optional
        Objective columns, in this order. Default: every column except ``session``,
        ``strategy``, ``step``, ``time`` and ``parse_ok``.
    client : distributed.Client, optional
        Cluster to compute on. Default: dask's current scheduler (the active
        ``distributed.Client`` if there is one, else local threads).
    standardize, centre_states : bool, default=True
        As in :func:`sdebayes.fit.fit`.

    Returns
    -------
    statistics : xarray.Dataset
        The Dataset of :func:`sdebayes.sufficient_stats.sufficient_statistics`, strategies in
        order of first appearance.
    description : sdebayes.fit.DataDescription
        Source, objectives, session counts, time column and score range, for
        :func:`sdebayes.fit.fit_statistics`.

    Raises
    ------
    DataError
        If the data cannot be read, a partition fails validation (the message names the
        partition), a session lies in two partitions, or a strategy has no transitions.

    Examples
    --------
    >>> from dask.distributed import Client, LocalCluster  # doctest: +SKIP
    >>> with LocalCluster(n_workers=2) as cluster, Client(cluster) as client:  # doctest: +SKIP
    ...     statistics, description = distributed_statistics("sessions/", client=client)
    """
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise DataError(
                f"{path}: no such file or directory; pass a Parquet directory or Zarr store"
            )
        if is_zarr_store(path):
            plan = _zarr_plan(path, objectives)
        elif path.is_dir() or path.suffix.lower() in {".parquet", ".pq"}:
            plan = _parquet_plan(path, objectives)
        else:
            raise DataError(
                f"{path}: not a Parquet directory, Parquet file or Zarr store; a CSV table "
                "cannot be split by session safely, so convert it with "
                "sdebayes.distributed.write_parquet_partitions"
            )
    else:
        plan = _dataframe_plan(data, objectives)

    moments = _compute(plan, client)
    _check_sessions_unique(moments, plan, client)
    return _finish(moments, plan, standardize, centre_states)


@dataclass
class _Plan:
    """The partitions to reduce (dask objects), their labels and session labels, the layout."""

    source: str
    objectives: list[str]
    has_time: bool
    parts: list[Any]
    labels: list[str]
    sessions: list[Any]


@dataclass
class _Moments:
    """Moment sums of one or more partitions, about the reference point ``shift``."""

    shift: np.ndarray
    strategies: list[str] = field(default_factory=list)
    groups: dict[tuple[str, float], np.ndarray] = field(default_factory=dict)
    versions: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    sessions: dict[str, np.ndarray] = field(default_factory=dict)
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    partitions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _layout(n: int) -> dict[str, slice]:
    """Where each sum sits in a packed group vector: n, u, d, uu, ud, dd."""
    sizes = {"n": 1, "u": n, "d": n, "uu": n * n, "ud": n * n, "dd": n * n}
    layout, start = {}, 0
    for name, size in sizes.items():
        layout[name] = slice(start, start + size)
        start += size
    return layout


def _trajectory_moments(trajectories: xr.Dataset, index: int) -> _Moments:
    """Moment sums of the transitions and versions of one validated partition."""
    n = trajectories.sizes["objective"]
    scores = trajectories["scores"].to_numpy().reshape(-1, n)
    scores = scores[np.isfinite(scores).all(axis=1)]
    shift = scores.mean(axis=0) if len(scores) else np.zeros(n)
    moments = _Moments(shift=shift)
    if len(scores) == 0:
        return moments

    centred = scores - shift
    moments.versions = np.concatenate(
        [[len(scores)], centred.sum(axis=0), (centred**2).sum(axis=0)]
    )
    moments.lower, moments.upper = scores.min(axis=0), scores.max(axis=0)

    session_strategy = trajectories["strategy"].to_numpy().astype(str)
    moments.strategies = list(dict.fromkeys(map(str, session_strategy)))
    versions = np.isfinite(trajectories["time"].to_numpy()).sum(axis=1)
    for name in moments.strategies:
        mine = session_strategy == name
        moments.sessions[name] = np.array([mine.sum(), (versions[mine] < 2).sum()])
    moments.hashes = pd.util.hash_array(trajectories["session"].to_numpy().astype(object))
    moments.partitions = np.full(len(moments.hashes), index, dtype=np.int64)

    steps = transitions(trajectories)
    state = steps["state"].to_numpy() - shift
    change = steps["change"].to_numpy()
    keys = pd.MultiIndex.from_arrays(
        [steps["strategy"].to_numpy().astype(str), steps["dt"].to_numpy()]
    )
    codes, unique = pd.factorize(keys)
    packed = np.zeros((len(unique), 1 + 2 * n + 3 * n * n))
    layout = _layout(n)
    np.add.at(packed[:, layout["n"]], codes, 1.0)
    np.add.at(packed[:, layout["u"]], codes, state)
    np.add.at(packed[:, layout["d"]], codes, change)
    np.add.at(packed[:, layout["uu"]], codes, _outer(state, state))
    np.add.at(packed[:, layout["ud"]], codes, _outer(state, change))
    np.add.at(packed[:, layout["dd"]], codes, _outer(change, change))
    moments.groups = {(str(name), float(dt)): packed[k] for k, (name, dt) in enumerate(unique)}
    return moments


def _outer(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return (left[:, :, None] * right[:, None, :]).reshape(len(left), -1)


def _shifted(moments: _Moments, shift: np.ndarray) -> _Moments:
    """Express ``moments`` about another reference point (exact: a change of variables)."""
    delta = moments.shift - shift
    if not np.any(delta):
        return moments
    n = len(shift)
    layout = _layout(n)
    groups = {}
    for key, packed in moments.groups.items():
        count = packed[layout["n"]][0]
        u, d = packed[layout["u"]], packed[layout["d"]]
        moved = packed.copy()
        moved[layout["u"]] = u + count * delta
        uu = packed[layout["uu"]].reshape(n, n)
        moved[layout["uu"]] = (
            uu + np.outer(u, delta) + np.outer(delta, u) + count * np.outer(delta, delta)
        ).ravel()
        moved[layout["ud"]] = (packed[layout["ud"]].reshape(n, n) + np.outer(delta, d)).ravel()
        groups[key] = moved

    versions = moments.versions
    if versions is not None:
        count, sums, squares = versions[0], versions[1 : n + 1], versions[n + 1 :]
        versions = np.concatenate(
            [[count], sums + count * delta, squares + 2 * delta * sums + count * delta**2]
        )
    return _Moments(
        shift,
        moments.strategies,
        groups,
        versions,
        moments.lower,
        moments.upper,
        moments.sessions,
        moments.hashes,
        moments.partitions,
    )


def _merge(parts: Sequence[_Moments]) -> _Moments:
    """Add moment sums of several partitions, keeping the order in which strategies appear."""
    filled = [part for part in parts if part.versions is not None]
    if not filled:
        return parts[0]
    shift = filled[0].shift
    merged = _Moments(shift=shift)
    for part in (_shifted(item, shift) for item in filled):
        merged.strategies += [name for name in part.strategies if name not in merged.strategies]
        for key, packed in part.groups.items():
            merged.groups[key] = merged.groups[key] + packed if key in merged.groups else packed
        for name, counts in part.sessions.items():
            merged.sessions[name] = merged.sessions.get(name, 0) + counts
        merged.versions = (
            part.versions if merged.versions is None else merged.versions + part.versions
        )
    merged.lower = np.min([part.lower for part in filled], axis=0)
    merged.upper = np.max([part.upper for part in filled], axis=0)
    merged.hashes = np.concatenate([part.hashes for part in filled])
    merged.partitions = np.concatenate([part.partitions for part in filled])
    return merged


def _frame_moments(frame: pd.DataFrame, index: int, label: str, objectives: list[str]) -> _Moments:
    """Validate one partition of a long table and reduce it (runs on a worker)."""
    frame = frame.reset_index(drop=True)
    for column in ("session", "strategy"):
        if column in frame.columns and isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(str)
    frame.attrs["format"] = "parquet"
    trajectories = trajectories_from_frame(frame, objectives=objectives, source=label)
    return _trajectory_moments(trajectories, index)


def _read_fragment(item: tuple[str, dict[str, Any]]) -> pd.DataFrame:
    """Read one Parquet file and add its hive partition keys as text columns."""
    import pyarrow.parquet as pq

    path, keys = item
    frame = pq.read_table(path).to_pandas()
    for name, value in keys.items():
        frame[name] = str(value)
    return frame


def _parquet_plan(path: Path, objectives: Sequence[str] | None) -> _Plan:
    import dask.dataframe as dd
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        fragments = list(dataset.get_fragments())
    except Exception as err:  # pyarrow raises several unrelated types for unreadable data
        raise DataError(f"{path}: cannot be read as Parquet ({_first_line(err)})") from err
    if not fragments:
        raise DataError(
            f"{path}: no Parquet files found; write the table with write_parquet_partitions"
        )

    items = [
        (str(item.path), ds.get_partition_keys(item.partition_expression)) for item in fragments
    ]
    pandas_index = (dataset.schema.pandas_metadata or {}).get("index_columns", [])
    columns = [name for name in dataset.schema.names if name not in pandas_index]
    meta = pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    frame = dd.from_map(_read_fragment, items, meta=meta, label="read-trajectories")
    labels = [f"{path}, partition {k} ({Path(item[0]).name})" for k, item in enumerate(items)]
    return _dataframe_plan(frame, objectives, str(path), columns, labels)


def _dataframe_plan(
    frame: dd.DataFrame,
    objectives: Sequence[str] | None,
    source: str = "<dask DataFrame>",
    columns: list[str] | None = None,
    labels: list[str] | None = None,
) -> _Plan:
    columns = [str(name) for name in (columns if columns is not None else frame.columns)]
    missing = [name for name in ID_COLUMNS if name not in columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))}; the table has "
            f"{columns!r}. Every table needs the columns session, strategy, step and one "
            "column per objective"
        )
    chosen = _choose_objectives(
        source, [name for name in columns if name not in ID_COLUMNS + METADATA_COLUMNS], objectives
    )
    labels = labels or [f"{source}, partition {k}" for k in range(frame.npartitions)]
    sources = list(frame.to_delayed())
    parts = [
        _delayed(_frame_moments)(part, k, label, chosen)
        for k, (part, label) in enumerate(zip(sources, labels, strict=True))
    ]
    return _Plan(source, chosen, "time" in columns, parts, labels, sources)


def _choose_objectives(
    source: str, available: list[str], objectives: Sequence[str] | None
) -> list[str]:
    chosen = list(available) if objectives is None else [str(name).strip() for name in objectives]
    unknown = [name for name in chosen if name not in available]
    if unknown or not chosen:
        raise DataError(
            f"{source}: unknown objective(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"available objectives: {', '.join(available) or 'none'}"
        )
    return chosen


def _block_moments(
    scores: np.ndarray,
    time: np.ndarray,
    session: np.ndarray,
    strategy: np.ndarray,
    step: np.ndarray,
    objectives: list[str],
    index: int,
    label: str,
) -> _Moments:
    """Validate one block of sessions of a Zarr store and reduce it (runs on a worker)."""
    observed = np.isfinite(time)
    bad = observed[:, :, None] & ~np.isfinite(scores)
    if bad.any():
        row, column, objective = np.argwhere(bad)[0]
        raise DataError(
            f"{label}: session {str(session[row])!r}, step {int(step[column])}: score "
            f"{objectives[objective]!r} is missing or not finite where the version exists; "
            "fix the store or mark the version missing with time = NaN"
        )
    earlier = np.where(observed, time, -np.inf)
    running = np.maximum.accumulate(earlier, axis=1)
    not_increasing = observed[:, 1:] & (time[:, 1:] <= running[:, :-1])
    if not_increasing.any():
        row, column = np.argwhere(not_increasing)[0]
        raise DataError(
            f"{label}: session {str(session[row])!r}: time does not increase at step "
            f"{int(step[column + 1])}; time must grow strictly with step"
        )
    labels = np.char.strip(strategy.astype(str))
    if (labels == "").any():
        row = int(np.flatnonzero(labels == "")[0])
        raise DataError(f"{label}: session {str(session[row])!r} has an empty strategy label")

    trajectories = xr.Dataset(
        {
            "scores": (
                ("session", "step", "objective"),
                np.where(observed[:, :, None], scores, np.nan),
            ),
            "time": (("session", "step"), np.where(observed, time, np.nan)),
        },
        coords={
            "session": session.astype(str),
            "step": step,
            "objective": np.asarray(objectives, dtype=str),
            "strategy": ("session", labels),
        },
    )
    return _trajectory_moments(trajectories, index)


def _zarr_plan(path: Path, objectives: Sequence[str] | None) -> _Plan:
    try:
        store = xr.open_zarr(path, consolidated=False, create_default_indexes=False)
        needed = {"scores", "time", "strategy", "session", "step", "objective"}
        missing = needed - set(store.variables)
    except Exception as err:  # zarr raises several unrelated types for unreadable stores
        raise DataError(f"{path}: cannot be read as a Zarr store ({_first_line(err)})") from err
    if missing:
        raise DataError(
            f"{path}: the Zarr store lacks {sorted(missing)!r}; write it with "
            "sdebayes.distributed.write_zarr(read_trajectories(table), path)"
        )

    available = [str(name) for name in store["objective"].to_numpy()]
    chosen = _choose_objectives(str(path), available, objectives)
    selected = [available.index(name) for name in chosen]
    scores = store["scores"].data[:, :, selected].rechunk({1: -1, 2: -1})
    blocks = scores.chunks[0]
    time = store["time"].data.rechunk((blocks, -1))
    session = store["session"].data.rechunk((blocks,))
    strategy = store["strategy"].data.rechunk((blocks,))
    step = store["step"].to_numpy()

    starts = np.concatenate([[0], np.cumsum(blocks)])
    labels = [f"{path}, sessions {starts[k]} to {starts[k + 1] - 1}" for k in range(len(blocks))]
    parts = [
        _delayed(_block_moments)(
            scores_block[0, 0],
            time_block[0],
            session_block,
            strategy_block,
            step,
            chosen,
            k,
            labels[k],
        )
        for k, (scores_block, time_block, session_block, strategy_block) in enumerate(
            zip(
                scores.to_delayed(),
                time.to_delayed(),
                session.to_delayed(),
                strategy.to_delayed(),
                strict=True,
            )
        )
    ]
    has_time = bool(int(store.attrs.get("has_time_column", 0)))
    return _Plan(str(path), chosen, has_time, parts, labels, list(session.to_delayed()))


def _delayed(function: Any) -> Any:
    import dask

    return dask.delayed(function, pure=True)


def _compute(plan: _Plan, client: Client | None) -> _Moments:
    """Reduce the partitions in a tree of merges, on the cluster."""
    import dask

    level = plan.parts
    while len(level) > 1:
        level = [
            _delayed(_merge)(level[start : start + _FAN_IN])
            for start in range(0, len(level), _FAN_IN)
        ]
    total = _delayed(_merge)(level)
    logger.info("reducing %d partition(s) of %s on dask", len(plan.parts), plan.source)
    if client is not None:
        return client.compute(total).result()
    (result,) = dask.compute(total)
    return result


def _check_sessions_unique(moments: _Moments, plan: _Plan, client: Client | None) -> None:
    values, counts = np.unique(moments.hashes, return_counts=True)
    if not (counts > 1).any():
        return
    repeated = values[np.flatnonzero(counts > 1)[0]]
    where = sorted(set(moments.partitions[moments.hashes == repeated].tolist()))
    name = _session_named(plan, where[0], repeated, client)
    first, second = (plan.labels[k].removeprefix(f"{plan.source}, ") for k in where[:2])
    raise DataError(
        f"{plan.source}: session {name!r} appears in {first} and {second}; every session "
        "must lie in one partition: write the table "
        "partitioned by session (sdebayes.distributed.write_parquet_partitions, or "
        "frame.shuffle('session').to_parquet(...) with dask)"
    )


def _session_named(plan: _Plan, index: int, wanted: np.uint64, client: Client | None) -> str:
    """Find the session label behind a hash by reading its partition again (error path)."""
    import dask

    task = _delayed(_name_of)(plan.sessions[index], wanted)
    return client.compute(task).result() if client is not None else dask.compute(task)[0]


def _name_of(sessions: Any, wanted: np.uint64) -> str:
    if isinstance(sessions, pd.DataFrame):
        sessions = sessions["session"]
    labels = pd.Series(np.asarray(sessions).astype(str)).str.strip().to_numpy(dtype=object)
    found = np.flatnonzero(pd.util.hash_array(labels) == wanted)
    return str(labels[found[0]]) if found.size else f"<hash {int(wanted)}>"


def _finish(
    moments: _Moments, plan: _Plan, standardize: bool, centre_states: bool
) -> tuple[xr.Dataset, DataDescription]:
    from sdebayes.fit import DataDescription

    if moments.versions is None:
        raise DataError(f"{plan.source}: the data have no rows; add one row per scored version")
    n = len(plan.objectives)
    count, sums, squares = (
        moments.versions[0],
        moments.versions[1 : n + 1],
        moments.versions[n + 1 :],
    )
    if standardize:
        location = moments.shift + sums / count
        scale = np.sqrt(np.maximum(squares / count - (sums / count) ** 2, 0.0))
        constant = scale <= 1e-12 * np.maximum(1.0, np.abs(location))
        if constant.any():
            names = np.asarray(plan.objectives)[constant]
            logger.warning("objective(s) %s never vary; their scale is set to 1", ", ".join(names))
            scale = np.where(constant, 1.0, scale)
    else:
        location, scale = np.zeros(n), np.ones(n)

    empty = [
        name for name in moments.strategies if not any(key[0] == name for key in moments.groups)
    ]
    if empty:
        raise DataError(
            f"{plan.source}: strategy(ies) {', '.join(map(repr, empty))} have no transitions "
            "(every session has a single version); remove those rows or add sessions with two "
            "or more versions"
        )
    intervals = np.unique([key[1] for key in moments.groups])
    per_strategy = [
        _strategy_statistics(moments, name, intervals, location, scale, centre_states)
        for name in moments.strategies
    ]
    statistics = statistics_dataset(
        per_strategy, moments.strategies, plan.objectives, intervals, location, scale
    )
    sessions = sum(int(counts[0]) for counts in moments.sessions.values())
    short = sum(int(counts[1]) for counts in moments.sessions.values())
    description = DataDescription(
        source=plan.source,
        objectives=tuple(plan.objectives),
        sessions=sessions,
        sessions_without_transitions=short,
        has_time_column=plan.has_time,
        lower=np.asarray(moments.lower, dtype=float),
        upper=np.asarray(moments.upper, dtype=float),
    )
    logger.info(
        "reduced %d sessions of %d strategies from %d partition(s)",
        sessions,
        len(moments.strategies),
        len(plan.parts),
    )
    return statistics, description


def _strategy_statistics(
    moments: _Moments,
    name: str,
    intervals: np.ndarray,
    location: np.ndarray,
    scale: np.ndarray,
    centre_states: bool,
) -> dict[str, Any]:
    """Turn one strategy's uncentred sums into the statistics of ``_strategy_statistics``.

    With ``u = x - k`` the state about the reference point, the standardised state centred
    at ``m`` is ``(u - p) / d`` with ``p = m d + location - k``; sums about ``p`` follow from
    sums about ``k`` by the same shift as in :func:`_shifted`.
    """
    n = len(location)
    layout = _layout(n)
    rows = np.zeros((len(intervals), layout["dd"].stop))
    for key, packed in moments.groups.items():
        if key[0] == name:
            rows[np.searchsorted(intervals, key[1])] = packed

    counts = rows[:, layout["n"]][:, 0]
    total = counts.sum()
    u_sum = rows[:, layout["u"]].sum(axis=0)
    offset = location - moments.shift
    centre = (u_sum / total - offset) / scale if centre_states else np.zeros(n)
    point = centre * scale + offset  # the centre, measured like u

    u = rows[:, layout["u"]] - counts[:, None] * point
    d = rows[:, layout["d"]]
    uu = rows[:, layout["uu"]].reshape(-1, n, n)
    uu = (
        uu
        - _outer_rows(rows[:, layout["u"]], point)
        - np.swapaxes(_outer_rows(rows[:, layout["u"]], point), 1, 2)
        + counts[:, None, None] * np.outer(point, point)
    )
    ud = rows[:, layout["ud"]].reshape(-1, n, n) - point[None, :, None] * d[:, None, :]
    dd = rows[:, layout["dd"]].reshape(-1, n, n)

    ratio = np.outer(scale, scale)
    interval_s_zz = np.zeros((len(intervals), n + 1, n + 1))
    interval_s_zz[:, :n, :n] = uu / ratio
    interval_s_zz[:, :n, n] = u / scale
    interval_s_zz[:, n, :n] = u / scale
    interval_s_zz[:, n, n] = counts
    interval_s_zy = np.concatenate([ud / ratio, (d / scale)[:, None, :]], axis=1)
    interval_s_yy = dd / ratio

    present = counts > 0
    dt = intervals[present]
    change_sum = d.sum(axis=0)
    state_cov = (uu.sum(axis=0) - np.outer(u.sum(axis=0), u.sum(axis=0)) / total) / total
    change_cov = (dd.sum(axis=0) - np.outer(change_sum, change_sum) / total) / total
    return {
        "n": int(total),
        "centre": centre,
        "s_zz": np.einsum("k,kij->ij", dt, interval_s_zz[present]),
        "s_zy": interval_s_zy[present].sum(axis=0),
        "s_yy": np.einsum("k,kij->ij", 1.0 / dt, interval_s_yy[present]),
        "y_sum": ((d[present] / scale) / np.sqrt(dt)[:, None]).sum(axis=0),
        "log_dt_sum": float(counts[present] @ np.log(dt)),
        "state_cov": state_cov / ratio,
        "change_cov": change_cov,
        "change_sum": change_sum / scale,
        "interval_n": counts,
        "interval_s_zz": interval_s_zz,
        "interval_s_zy": interval_s_zy,
        "interval_s_yy": interval_s_yy,
    }


def _outer_rows(rows: np.ndarray, point: np.ndarray) -> np.ndarray:
    return rows[:, :, None] * point[None, None, :]


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def write_parquet_partitions(
    table: pd.DataFrame, directory: str | Path, partitions: int
) -> list[Path]:
    """Write a trajectory table as Parquet files that each hold whole sessions.

    Parameters
    ----------
    table : pandas.DataFrame
        Long trajectory table (one row per version).
    directory : str or Path
        Created if needed; files ``part-00000.parquet``, ... are written into it.
    partitions : int
        Number of files. Sessions are dealt out in blocks, in order of first appearance, so
        each file holds about the same number of sessions.

    Returns
    -------
    list of Path
        The files written.
    """
    if partitions < 1:
        raise ValueError(f"partitions={partitions!r} must be a positive int")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    codes, names = pd.factorize(table["session"].astype(str))
    block = np.minimum(codes * partitions // max(len(names), 1), partitions - 1)
    files = []
    for k in range(partitions):
        part = table[block == k]
        if len(part):
            file = directory / f"part-{k:05d}.parquet"
            part.to_parquet(file, index=False)
            files.append(file)
    return files


def write_zarr(
    trajectories: xr.Dataset, store: str | Path, sessions_per_chunk: int = 10_000
) -> Path:
    """Write trajectories as a Zarr store chunked along ``session``.

    Parameters
    ----------
    trajectories : xarray.Dataset
        As returned by :func:`sdebayes.data.read_trajectories`.
    store : str or Path
        Path of the new store.
    sessions_per_chunk : int, default=10_000
        Sessions per chunk; each chunk is one task of :func:`distributed_statistics`.

    Returns
    -------
    Path
    """
    if sessions_per_chunk < 1:
        raise ValueError(f"sessions_per_chunk={sessions_per_chunk!r} must be a positive int")
    size = min(sessions_per_chunk, max(trajectories.sizes["session"], 1))
    chunked = trajectories.chunk({"session": size, "step": -1, "objective": -1})
    chunked.attrs = {key: value for key, value in trajectories.attrs.items() if key != "objectives"}
    chunked.to_zarr(store, mode="w-", consolidated=False)
    return Path(store)
