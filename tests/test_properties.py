"""Property tests of the readers: whatever the input, it loads or raises our own error.

Arbitrary bytes, CSV-like text, pandas frames and JSON Lines either give a valid result or
raise :class:`~sdebayes.exceptions.SdebayesError` with a one-line message; never another
exception, a warning or a traceback.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sdebayes.data import read_trajectories, trajectories_from_frame
from sdebayes.exceptions import SdebayesError
from sdebayes.scoring.traces import read_traces

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def write_and_read(content: bytes, name: str = "table.csv") -> xr.Dataset | SdebayesError:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            return read_trajectories(path)
        except SdebayesError as err:
            return err


def check_loaded(result: xr.Dataset | SdebayesError) -> None:
    """A loaded table is consistent; an error is one line that names the file."""
    if isinstance(result, SdebayesError):
        message = str(result)
        assert "\n" not in message and message, message
        return
    scores = result["scores"].to_numpy()
    time = result["time"].to_numpy()
    observed = np.isfinite(time)
    assert observed.any(axis=1).all(), "every session has a version"
    assert np.isfinite(scores[observed]).all(), "observed versions have finite scores"
    assert np.isnan(scores[~observed]).all(), "missing versions are NaN"
    assert (np.diff(result["step"].to_numpy()) > 0).all(), "steps are sorted"
    assert result.sizes["objective"] >= 1


# --- CSV files ----------------------------------------------------------------------------

_cell = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "0.5", "2", "1e400", "nan", "inf", "NA", "a", "S"]),
    st.text(alphabet='ab01.,"; \t-', max_size=6),
)
_header = st.lists(
    st.sampled_from(["session", "strategy", "step", "time", "x", "y", "parse_ok", "", "x"]),
    min_size=0,
    max_size=6,
)


@st.composite
def csv_text(draw: st.DrawFn) -> bytes:
    """Text that is CSV-like: a header of likely names and rows of likely cells."""
    header = draw(_header)
    width = st.integers(max(0, len(header) - 1), len(header) + 1)
    rows = draw(
        st.lists(st.lists(_cell, min_size=0, max_size=7).filter(lambda r: True), max_size=6)
    )
    rows = [row[: draw(width)] for row in rows]
    lines = [",".join(header), *(",".join(row) for row in rows)]
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return ending.join(lines).encode("utf-8") + draw(st.sampled_from([b"", b"\n"]))


@SETTINGS
@given(content=st.binary(max_size=200))
def test_arbitrary_bytes_load_or_raise_our_error(content):
    check_loaded(write_and_read(content))


@SETTINGS
@given(content=csv_text())
def test_csv_like_text_loads_or_raises_our_error(content):
    check_loaded(write_and_read(content))


@SETTINGS
@given(content=st.binary(max_size=200))
def test_arbitrary_bytes_as_parquet_raise_our_error(content):
    result = write_and_read(content, name="table.parquet")
    assert isinstance(result, SdebayesError)


# --- frames -------------------------------------------------------------------------------

_values = st.one_of(
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.booleans(),
    st.none(),
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Frames with likely column names and columns of one arbitrary kind of value each."""
    names = draw(
        st.lists(
            st.sampled_from(["session", "strategy", "step", "time", "parse_ok", "x", "y", 0]),
            max_size=6,
            unique=True,
        )
    )
    length = draw(st.integers(0, 6))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(["int", "float", "text", "mixed"]))
        element = {
            "int": st.integers(-2, 4),
            "float": st.floats(allow_nan=True, allow_infinity=True),
            "text": st.sampled_from(["a", "b", "0", "1", " ", ""]),
            "mixed": _values,
        }[kind]
        columns[name] = draw(st.lists(element, min_size=length, max_size=length))
    return pd.DataFrame(columns)


@SETTINGS
@given(frame=frames())
@example(frame=pd.DataFrame({0: [0], "session": [0], "strategy": [0], "step": [0]}))
def test_arbitrary_frames_load_or_raise_our_error(frame):
    try:
        result = trajectories_from_frame(frame, source="frame")
    except SdebayesError as err:
        result = err
    check_loaded(result)


@st.composite
def valid_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Valid long tables: sessions with distinct steps, one strategy each, finite scores."""
    rows = []
    for session in range(draw(st.integers(1, 4))):
        strategy = draw(st.sampled_from(["A", "B"]))
        steps = draw(st.lists(st.integers(0, 6), min_size=1, max_size=5, unique=True))
        for step in steps:
            score = draw(st.floats(-100, 100, allow_nan=False))
            rows.append((f"s{session}", strategy, step, score))
    return pd.DataFrame(rows, columns=["session", "strategy", "step", "x"])


@SETTINGS
@given(frame=valid_frames(), seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(frame, seed):
    shuffled = frame.sample(frac=1, random_state=np.random.default_rng(seed))

    expected = trajectories_from_frame(frame, source="t").sortby("session")
    result = trajectories_from_frame(shuffled, source="t").sortby("session")

    xr.testing.assert_identical(result, expected)
    for row in frame.itertuples():
        value = result["scores"].sel(session=row.session, step=row.step, objective="x")
        assert float(value) == pytest.approx(row.x, abs=0.0)


# --- JSON Lines trace files -----------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=5,
)
_record = st.fixed_dictionaries(
    {},
    optional={
        "session": st.one_of(st.sampled_from(["a", "b", " ", ""]), st.integers(-1, 2), _json),
        "strategy": st.one_of(st.sampled_from(["s", "t"]), _json),
        "step": st.one_of(st.integers(-1, 3), st.floats(), st.just(10**30), _json),
        "code": st.one_of(st.text(max_size=10), _json),
    },
)
_trace_line = st.one_of(
    st.binary(max_size=30),
    _record.map(lambda record: json.dumps(record).encode("utf-8", "surrogatepass")),
)


def read_trace_bytes(content: bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traces.jsonl"
        path.write_bytes(content)
        try:
            return read_traces(path)
        except SdebayesError as err:
            return err


@SETTINGS
@given(content=st.binary(max_size=300))
def test_arbitrary_bytes_as_traces_load_or_raise_our_error(content):
    result = read_trace_bytes(content)
    if isinstance(result, SdebayesError):
        assert "\n" not in str(result)
    else:
        assert all(isinstance(version.code, str) for version in result)


@SETTINGS
@given(lines=st.lists(_trace_line, max_size=6), ending=st.sampled_from([b"\n", b"\r\n"]))
def test_json_lines_load_or_raise_our_error(lines, ending):
    result = read_trace_bytes(ending.join(line.replace(b"\n", b" ") for line in lines))
    if isinstance(result, SdebayesError):
        assert "\n" not in str(result)
        return
    keys = [(version.session, version.step) for version in result]
    assert len(keys) == len(set(keys)), "no session has a step twice"
    assert all(isinstance(v.step, int) and v.step >= 0 for v in result)
    assert all(isinstance(v.session, str) and v.session for v in result)
