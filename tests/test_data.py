from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from sdebayes.data import (
    drop_strategies_without_transitions,
    read_table,
    read_trajectories,
    trajectories_from_frame,
    transitions,
    warn_constant_objectives,
)
from sdebayes.datasets import paper_sessions_path
from sdebayes.exceptions import DataError, DataWarning

GOOD = """session,strategy,step,security,efficiency
a,EF,0,1.0,2.0
a,EF,1,1.5,2.5
a,EF,2,2.0,2.0
b,SF,0,3.0,1.0
b,SF,1,3.5,0.5
"""


def write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_long_table_into_session_step_objective(tmp_path):
    trajectories = read_trajectories(write(tmp_path, GOOD))

    assert trajectories["scores"].dims == ("session", "step", "objective")
    assert list(trajectories["objective"].to_numpy()) == ["security", "efficiency"]
    assert list(trajectories["strategy"].to_numpy()) == ["EF", "SF"]
    assert np.isnan(trajectories["scores"].sel(session="b", step=2)).all()
    assert_allclose(trajectories["scores"].sel(session="a", step=1), [1.5, 2.5], rtol=0)


def test_objectives_option_selects_and_orders_columns(tmp_path):
    trajectories = read_trajectories(write(tmp_path, GOOD), objectives=["efficiency"])
    assert list(trajectories["objective"].to_numpy()) == ["efficiency"]


def test_labels_stay_strings(tmp_path):
    text = "session,strategy,step,score\n007,NA,0,1\n007,NA,1,2\n7,NA,0,3\n7,NA,1,4\n"
    trajectories = read_trajectories(write(tmp_path, text))
    assert sorted(trajectories["session"].to_numpy()) == ["007", "7"]
    assert set(trajectories["strategy"].to_numpy()) == {"NA"}


def test_parquet_matches_csv(tmp_path):
    frame = pd.read_csv(write(tmp_path, GOOD))
    parquet = tmp_path / "table.parquet"
    frame.to_parquet(parquet)

    from_csv = read_trajectories(tmp_path / "table.csv")
    from_parquet = read_trajectories(parquet)
    assert_allclose(from_parquet["scores"], from_csv["scores"], rtol=0)


def test_transitions_never_cross_sessions(tmp_path):
    steps = transitions(read_trajectories(write(tmp_path, GOOD)))

    assert steps.sizes["transition"] == 3
    assert list(steps["session"].to_numpy()) == ["a", "a", "b"]
    assert_allclose(steps["change"].to_numpy(), [[0.5, 0.5], [0.5, -0.5], [0.5, -0.5]], rtol=0)
    assert_allclose(steps["dt"], 1.0, rtol=0)


def test_skipped_step_gives_a_longer_dt(tmp_path):
    text = "session,strategy,step,x\na,S,0,1\na,S,2,3\na,S,3,4\n"
    steps = transitions(read_trajectories(write(tmp_path, text)))
    assert_allclose(steps["dt"], [2.0, 1.0], rtol=0)


def test_time_column_sets_dt(tmp_path):
    text = "session,strategy,step,time,x\na,S,0,0.0,1\na,S,1,0.5,3\na,S,2,2.0,4\n"
    steps = transitions(read_trajectories(write(tmp_path, text)))
    assert_allclose(steps["dt"], [0.5, 1.5], rtol=0)


def test_bundled_paper_data_loads():
    trajectories = read_trajectories(paper_sessions_path())
    assert trajectories.sizes == {"session": 400, "step": 11, "objective": 3}
    assert transitions(trajectories).sizes["transition"] == 4000


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("session,step,x\na,0,1\n", r"missing column\(s\) 'strategy'"),
        ("session;strategy;step;x\na;S;0;1\n", "delimited by something other than commas"),
        ("session,strategy,step,x\n", "header but no rows"),
        ("session,strategy,step\na,S,0\n", "no objective columns"),
        ("session,strategy,step,x\na,S,0,abc\n", r"line 2, column 'x': 'abc' is not a number"),
        ("session,strategy,step,x\na,S,0,inf\n", r"line 2, column 'x': 'inf' is not finite"),
        ("session,strategy,step,x\na,S,0,\n", r"line 2, column 'x': '' is not a number"),
        ("session,strategy,step,x\na,S,0.5,1\n", r"column 'step': '0.5' is not a whole number"),
        ("session,strategy,step,x\na,S,-1,1\n", r"column 'step': '-1' is negative"),
        ("session,strategy,step,x\na,S,one,1\n", "is not a whole number"),
        ("session,strategy,step,x\na,S,0,1\na,S,0,2\n", "session 'a' has step 0 twice"),
        ("session,strategy,step,x\na,S,0,1\na,T,1,2\n", r"session 'a' changes strategy \(S -> T\)"),
        ("session,strategy,step,x\n,S,0,1\n", "column 'session': the value is empty"),
        ("session,strategy,step,x,x\na,S,0,1,2\n", "appear more than once"),
        (
            "session,strategy,step,time,x\na,S,0,1.0,1\na,S,1,1.0,2\n",
            "column 'time': 1.0 does not increase",
        ),
    ],
)
def test_invalid_tables_name_the_problem(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        read_trajectories(write(tmp_path, text))


def test_unknown_objective_lists_available(tmp_path):
    with pytest.raises(
        DataError, match=r"unknown objective.*'speed'.*available objectives: security, efficiency"
    ):
        read_trajectories(write(tmp_path, GOOD), objectives=["speed"])


def test_errors_name_the_file(tmp_path):
    path = write(tmp_path, "session,step,x\na,0,1\n", name="mine.csv")
    with pytest.raises(DataError, match=r"mine\.csv"):
        read_trajectories(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "the file is empty"), (b"\xff\xfe\x00garbage\x9c", "not a UTF-8 text file")],
)
def test_unreadable_files(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "absent.csv")


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        read_table(path)


def test_frame_with_numeric_columns_is_accepted():
    frame = pd.DataFrame(
        {"session": [1, 1], "strategy": ["S", "S"], "step": [0, 1], "x": [0.0, 1.0]}
    )
    trajectories = trajectories_from_frame(frame, source="memory")
    assert list(trajectories["session"].to_numpy()) == ["1"]
    assert trajectories.attrs["source"] == "memory"


def test_unsorted_rows_load_in_step_order(tmp_path):
    shuffled = "session,strategy,step,x\na,S,2,3\nb,S,1,5\na,S,0,1\nb,S,0,4\na,S,1,2\n"
    trajectories = read_trajectories(write(tmp_path, shuffled))
    assert list(trajectories["session"].values) == ["a", "b"]
    assert_allclose(trajectories["scores"].sel(objective="x"), [[1, 2, 3], [4, 5, np.nan]])
    steps = transitions(trajectories)
    assert_allclose(steps["change"].sel(objective="x"), [1, 1, 1])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("session,strategy,step\na,S,0,1\n", r"line 2 has 4 field\(s\) but the header has 3"),
        ("session,strategy,step,x\na,S,0,1\na,S,1\n", r"line 3 has 3 field\(s\) but the header"),
        ("session,strategy,step,x\na,S,0,1,\n", r"line 2 has 5 field\(s\)"),
        ("session,strategy,step,x\na,S,10000000000,1\n", "'10000000000' is too large"),
        ('{"session": "a", "step": 0}\n', r"looks like JSON \(Lines\)"),
        ("<html><body></body></html>\n", "looks like XML, HTML or SVG"),
        ('session,strategy,step,x\n"a,S,0,1\n', "line 2 has 1 field"),
    ],
)
def test_malformed_rows_are_refused_with_the_line(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        read_trajectories(write(tmp_path, text))


@pytest.mark.parametrize(
    ("start", "kind"),
    [
        (b"\x89HDF\r\n\x1a\n", r"a NetCDF-4/HDF5 file \(a posterior\?\)"),
        (b"CDF\x01", "a NetCDF-3 file"),
        (b"PAR1", "a Parquet file, not a CSV table; give it the suffix .parquet"),
        (b"PK\x03\x04", r"a ZIP archive \(an Excel workbook\?\)"),
    ],
)
def test_binary_formats_are_named(tmp_path, start, kind):
    path = tmp_path / "table.csv"
    path.write_bytes(start + b"\x00" * 40)
    with pytest.raises(DataError, match=kind):
        read_table(path)


def test_a_directory_without_parquet_files_says_so(tmp_path):
    with pytest.raises(DataError, match="is a directory without Parquet files"):
        read_table(tmp_path)


def test_unreadable_file_is_a_data_error(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(DataError, match=r"cannot be read \(Permission denied\); check the path"):
        read_table(path)


def test_frame_column_names_are_matched_as_text():
    frame = pd.DataFrame({"session": ["a", "a"], "strategy": ["S", "S"], "step": [0, 1], 0: [1, 2]})
    trajectories = trajectories_from_frame(frame, source="memory")
    assert list(trajectories["objective"].values) == ["0"]


def test_strategies_without_transitions_are_left_out_with_a_warning(tmp_path):
    text = "session,strategy,step,x\na,S,0,1\na,S,1,2\nb,T,0,1\nc,T,0,2\n"
    trajectories = read_trajectories(write(tmp_path, text))

    with pytest.warns(DataWarning, match=r"strategy\(ies\) 'T' have no transitions .* left out"):
        kept = drop_strategies_without_transitions(trajectories)

    assert list(kept["session"].values) == ["a"]
    assert set(kept["strategy"].values) == {"S"}
    with pytest.raises(DataError, match=r"'T' have no transitions .*, so they cannot be fitted"):
        drop_strategies_without_transitions(trajectories, requested=["T"])


def test_a_table_without_any_transition_is_an_error(tmp_path):
    trajectories = read_trajectories(write(tmp_path, "session,strategy,step,x\na,S,0,1\n"))
    with pytest.raises(DataError, match="no strategy has a transition"):
        drop_strategies_without_transitions(trajectories)


def test_strategies_with_transitions_are_kept_as_they_are(tmp_path):
    trajectories = read_trajectories(write(tmp_path, GOOD))
    assert drop_strategies_without_transitions(trajectories) is trajectories


def test_an_objective_constant_within_a_strategy_is_warned_about(tmp_path):
    text = "session,strategy,step,x,y\na,S,0,5,1\na,S,1,5,2\nb,S,0,5,3\nb,S,1,5,1\n"
    text += "c,T,0,1,1\nc,T,1,2,2\n"
    trajectories = read_trajectories(write(tmp_path, text))

    with pytest.warns(DataWarning, match=r"objective\(s\) 'x' never change within strategy 'S'"):
        found = warn_constant_objectives(trajectories)

    assert found == [("S", "x")]
