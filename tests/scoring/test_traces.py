"""The JSON Lines trace reader: what loads, and a one-line DataError for everything else."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from _helpers import SAMPLE_TRACES, version
from hypothesis import given, settings
from hypothesis import strategies as st

from sdebayes.exceptions import DataError
from sdebayes.scoring import TraceVersion, read_traces


def test_reads_versions_in_file_order_and_keeps_metadata(write_traces):
    path = write_traces(
        version("a", 0, "x = 1", source="repo", condition="c"),
        "",
        version("a", 1, "x = 2"),
        version(7, 0, "", strategy=3),
    )

    versions = read_traces(path)

    assert [(v.session, v.step, v.code) for v in versions] == [
        ("a", 0, "x = 1"),
        ("a", 1, "x = 2"),
        ("7", 0, ""),
    ]
    assert versions[0].metadata == {"source": "repo", "condition": "c"}
    assert versions[2].strategy == "3"
    assert [v.line for v in versions] == [1, 3, 4]


def test_accepts_byte_order_mark_crlf_and_integral_float_steps(write_traces):
    path = write_traces(
        b"\xef\xbb\xbf" + json.dumps(version("a", 0)).encode() + b"\r",
        json.dumps(version("a", 1.0)),
    )

    assert [v.step for v in read_traces(path)] == [0, 1]


def test_labels_are_stripped_like_the_table_reader(write_traces):
    path = write_traces(version("  a ", 0, strategy=" s "))

    assert read_traces(path)[0] == TraceVersion("a", "s", 0, "x = 1\n", line=1)


def test_bundled_sample_loads():
    versions = read_traces(SAMPLE_TRACES)

    assert 20 <= len(versions) <= 40
    assert {v.metadata["source"] for v in versions} == {"FloridSleeves/LLMDebugger"}


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ([b"{not json"], r"traces\.jsonl:1: not valid JSON \(.*column 2\)"),
        (["[1, 2]"], r":1: a JSON array, not an object; write one object per line"),
        (['"text"'], r":1: a JSON string, not an object"),
        ([version(), b"\xff\xfe{}"], r":2: not UTF-8 text \(byte 0"),
        (["[" * 100_000], r":1: not usable JSON \(RecursionError"),
        (['{"step": ' + "9" * 5000 + "}"], r":1: not usable JSON \(ValueError"),
        ([{"strategy": "s", "step": 0, "code": ""}], r":1: field 'session' is missing"),
        ([{"session": "a", "step": 0, "code": ""}], r":1: field 'strategy' is missing"),
        ([{"session": "a", "strategy": "s", "code": ""}], r":1: field 'step' is missing"),
        ([{"session": "a", "strategy": "s", "step": 0}], r":1: field 'code' is missing"),
        ([version(step=1.5)], r":1: field 'step' is 1\.5, not a whole number"),
        ([version(step="3")], r":1: field 'step' is '3', not a whole number"),
        ([version(step=True)], r":1: field 'step' is True, not a whole number"),
        ([version(step=None)], r":1: field 'step' is None, not a whole number"),
        (['{"session": "a", "strategy": "s", "step": NaN, "code": ""}'], r"'step' is nan"),
        ([version(step=-1)], r":1: field 'step' is -1; steps count from 0"),
        ([version(step=10**12)], r":1: field 'step' is 1000000000000; steps count from 0"),
        ([version(session=1.5)], r":1: field 'session' is a JSON number \(1\.5\); write it as"),
        ([version(session=None)], r":1: field 'session' is a JSON null"),
        ([version(session=False)], r":1: field 'session' is a JSON boolean"),
        ([version(session=["a"])], r":1: field 'session' is a JSON array"),
        ([version(session="  ")], r":1: field 'session' is empty"),
        ([version(strategy="\ud800")], r":1: field 'strategy' holds a character with no UTF-8"),
        ([version(code=None)], r":1: field 'code' is a JSON null, not a string"),
        ([version(code=["x = 1"])], r":1: field 'code' is a JSON array, not a string"),
        (
            [version("a", 0), version("b", 0), version("a", 0)],
            r":3: session 'a' has step 0 twice \(also on line 1\)",
        ),
        (
            [version("a", 0, strategy="x"), version("a", 1, strategy="y")],
            r":2: field 'strategy': session 'a' changes strategy \('x' on line 1, 'y' here\)",
        ),
        (["", "   "], r"the file holds no version; expected one JSON object per line"),
    ],
)
def test_bad_lines_raise_data_error_naming_line_and_field(write_traces, lines, match):
    path = write_traces(*lines)

    with pytest.raises(DataError, match=match) as caught:
        read_traces(path)
    assert "\n" not in str(caught.value)


def test_missing_file_directory_and_empty_file(tmp_path):
    with pytest.raises(DataError, match=r"missing\.jsonl: no such file; pass the path"):
        read_traces(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match=r"is a directory; pass the path of a JSON Lines"):
        read_traces(tmp_path)
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jsonl: the file holds no version"):
        read_traces(tmp_path / "empty.jsonl")


def test_long_values_are_shortened_in_messages(write_traces):
    path = write_traces(version(session={"nested": "x" * 500}))

    with pytest.raises(DataError, match=r"JSON object \(\{'nested': 'xxx.*\.\.\.\)") as caught:
        read_traces(path)
    assert len(str(caught.value)) < 300


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
_records = st.fixed_dictionaries(
    {},
    optional={
        "session": st.one_of(st.text(max_size=4), st.integers(-2, 2), _json_values),
        "strategy": st.one_of(st.sampled_from(["a", "b"]), _json_values),
        "step": st.one_of(st.integers(-1, 3), st.floats(), _json_values),
        "code": st.one_of(st.text(max_size=20), _json_values),
        "extra": _json_values,
    },
)
_lines = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass")),
    _records.map(lambda record: json.dumps(record).encode("utf-8", "surrogatepass")),
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_lines, max_size=6))
def test_any_bytes_either_load_or_raise_data_error(lines):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traces.jsonl"
        path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
        try:
            versions = read_traces(path)
        except DataError as err:
            assert "\n" not in str(err)
        else:
            assert versions
            assert all(isinstance(v.step, int) and v.step >= 0 for v in versions)
            assert all(isinstance(v.code, str) and v.session for v in versions)
