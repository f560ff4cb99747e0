"""Sufficient statistics on a real dask.distributed cluster, and the --dask-scheduler options."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from sdebayes.cli import app
from sdebayes.data import read_table, read_trajectories, transitions
from sdebayes.datasets import bundled_path, paper_sessions_path
from sdebayes.distributed import (
    connect,
    distributed_statistics,
    is_zarr_store,
    write_parquet_partitions,
    write_zarr,
)
from sdebayes.exceptions import DataError, SdebayesError
from sdebayes.simulate import paper_scenario, simulate_sessions
from sdebayes.sufficient_stats import standardization, sufficient_statistics

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

runner = CliRunner()


@pytest.fixture(scope="module")
def client():
    """A real in-process cluster: one worker with two threads (light enough for CI)."""
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def uneven_table() -> pd.DataFrame:
    """Timed sessions with random gaps, some versions removed, one single-version session."""
    table = simulate_sessions(paper_scenario(), 12, 5, random_seed=3, mean_dt=1.6)
    table = table.drop(table.index[2::7]).reset_index(drop=True)
    single = table[table["session"] == "EF-0001"].iloc[:1]
    return pd.concat([table[table["session"] != "EF-0001"], single], ignore_index=True)


def in_memory(trajectories: xr.Dataset, standardize=True, centre_states=True) -> xr.Dataset:
    """The statistics as sdebayes.fit.fit computes them from trajectories in memory."""
    n = trajectories.sizes["objective"]
    location, scale = standardization(trajectories) if standardize else (np.zeros(n), np.ones(n))
    strategies = list(dict.fromkeys(trajectories["strategy"].to_numpy()))
    return sufficient_statistics(
        transitions(trajectories), location, scale, strategies, centre_states
    )


def assert_same_statistics(actual: xr.Dataset, expected: xr.Dataset) -> None:
    assert list(actual.data_vars) == list(expected.data_vars)
    assert actual.attrs == expected.attrs
    for name in expected.variables:
        assert actual[name].dims == expected[name].dims, name
        assert actual[name].dtype == expected[name].dtype, name
    xr.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("partitions", [1, 5])
def test_parquet_partitions_give_the_in_memory_statistics(tmp_path, client, partitions):
    write_parquet_partitions(read_table(paper_sessions_path()), tmp_path / "parts", partitions)

    statistics, description = distributed_statistics(tmp_path / "parts", client=client)

    trajectories = read_trajectories(tmp_path / "parts")
    assert_same_statistics(statistics, in_memory(trajectories))
    assert description.sessions == 400 and description.sessions_without_transitions == 0
    assert description.objectives == ("security", "efficiency", "functionality")
    assert not description.has_time_column
    np.testing.assert_allclose(description.lower, trajectories["scores"].min(("session", "step")))
    np.testing.assert_allclose(description.upper, trajectories["scores"].max(("session", "step")))


@pytest.mark.parametrize(("standardize", "centre_states"), [(True, True), (False, False)])
def test_uneven_time_steps_and_raw_scale(
    tmp_path, client, uneven_table, standardize, centre_states
):
    write_parquet_partitions(uneven_table, tmp_path / "parts", 4)

    statistics, description = distributed_statistics(
        tmp_path / "parts", client=client, standardize=standardize, centre_states=centre_states
    )

    trajectories = read_trajectories(tmp_path / "parts")
    expected = in_memory(trajectories, standardize, centre_states)
    assert expected.sizes["interval"] > 3  # the exact transition's per-step groups are tested
    assert_same_statistics(statistics, expected)
    assert description.has_time_column and description.sessions_without_transitions == 1


def test_hive_partitions_by_strategy(tmp_path, client, uneven_table):
    uneven_table.to_parquet(tmp_path / "hive", partition_cols=["strategy"])

    statistics, _ = distributed_statistics(tmp_path / "hive", client=client)

    assert_same_statistics(statistics, in_memory(read_trajectories(tmp_path / "hive")))


def test_zarr_store_gives_the_in_memory_statistics(tmp_path, client, uneven_table):
    trajectories = read_trajectories_from(uneven_table)
    store = write_zarr(trajectories, tmp_path / "sessions.zarr", sessions_per_chunk=7)
    assert is_zarr_store(store) and not is_zarr_store(tmp_path)

    statistics, description = distributed_statistics(store, client=client)

    assert_same_statistics(statistics, in_memory(trajectories))
    assert description.sessions == trajectories.sizes["session"] and description.has_time_column


def test_objectives_are_selected_in_the_order_given(tmp_path, client):
    write_parquet_partitions(read_table(paper_sessions_path()), tmp_path / "parts", 3)
    chosen = ["functionality", "security"]

    statistics, description = distributed_statistics(tmp_path / "parts", chosen, client=client)

    expected = in_memory(read_trajectories(tmp_path / "parts", objectives=chosen))
    assert_same_statistics(statistics, expected)
    assert description.objectives == tuple(chosen)


def test_dask_dataframe_partitioned_by_session(client):
    table = read_table(paper_sessions_path())
    table[["step", "security", "efficiency", "functionality"]] = table[
        ["step", "security", "efficiency", "functionality"]
    ].astype(float)
    parts = [table.iloc[start : start + 11 * 50] for start in range(0, len(table), 11 * 50)]
    frame = dd.from_map(lambda part: part, parts)

    statistics, _ = distributed_statistics(frame, client=client)

    assert_same_statistics(statistics, in_memory(read_trajectories(paper_sessions_path())))


def test_a_session_split_across_partitions_is_refused(tmp_path, client):
    table = read_table(paper_sessions_path())
    write_parquet_partitions(table, tmp_path / "parts", 3)
    table.iloc[:4].to_parquet(tmp_path / "parts" / "zz-extra.parquet", index=False)

    with pytest.raises(DataError, match=r"session 'EF-0000' appears in partition 0 \(part-0000"):
        distributed_statistics(tmp_path / "parts", client=client)


def test_rows_split_without_regard_to_sessions_are_refused(client):
    frame = dd.from_pandas(read_table(paper_sessions_path()), npartitions=3, sort=False)

    with pytest.raises(DataError, match=r"appears in partition \d and partition \d; every session"):
        distributed_statistics(frame, client=client)


def test_a_bad_cell_is_reported_with_its_partition(tmp_path, client):
    table = read_table(paper_sessions_path())
    table.loc[2000, "security"] = "n/a"
    write_parquet_partitions(table, tmp_path / "parts", 3)

    with pytest.raises(
        DataError, match=r"parts, partition 1 \(part-00001.parquet\): row 527, column 'secu"
    ):
        distributed_statistics(tmp_path / "parts", client=client)


def test_a_strategy_without_transitions_is_refused(tmp_path, client):
    table = read_table(paper_sessions_path())
    table = table[(table["strategy"] != "SF") | (table["step"] == "0")]
    write_parquet_partitions(table, tmp_path / "parts", 2)

    with pytest.raises(DataError, match=r"strategy\(ies\) 'SF' have no transitions"):
        distributed_statistics(tmp_path / "parts", client=client)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda path: path / "missing", "no such file or directory"),
        (lambda path: _written(path / "table.csv", "session,strategy\n"), "cannot be split"),
        (lambda path: _mkdir(path / "empty"), "no Parquet files found"),
    ],
)
def test_unusable_inputs_are_refused(tmp_path, make, match):
    with pytest.raises(DataError, match=match):
        distributed_statistics(make(tmp_path))


def test_zarr_store_with_missing_variables_is_refused(tmp_path):
    trajectories = read_trajectories(paper_sessions_path())
    write_zarr(trajectories.drop_vars("time"), tmp_path / "partial.zarr")

    with pytest.raises(DataError, match=r"lacks \['time'\]"):
        distributed_statistics(tmp_path / "partial.zarr")


def test_an_unreachable_scheduler_is_a_one_line_error():
    with pytest.raises(SdebayesError, match="cannot connect"), connect("tcp://127.0.0.1:9", 0.5):
        pass


def test_score_command_runs_on_the_cluster(tmp_path, client):
    local, remote = tmp_path / "local.csv", tmp_path / "remote.csv"
    traces = str(bundled_path("real_traces_sample.jsonl"))

    first = runner.invoke(app, ["score", traces, "-o", str(local), "--workers", "1"])
    second = runner.invoke(
        app, ["score", traces, "-o", str(remote), "--dask-scheduler", client.scheduler.address]
    )

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "an external executor" in second.output
    pd.testing.assert_frame_equal(pd.read_csv(remote), pd.read_csv(local))


def test_sample_command_rejects_a_csv_with_a_scheduler(tmp_path, client):
    result = runner.invoke(
        app, ["sample", "--dask-scheduler", client.scheduler.address, "-o", str(tmp_path / "a.nc")]
    )

    assert result.exit_code == 2, result.output
    assert "cannot be split by session safely" in result.output


@pytest.mark.slow
def test_sample_command_fits_partitioned_data_on_the_cluster(tmp_path, client):
    write_parquet_partitions(read_table(paper_sessions_path()), tmp_path / "parts", 4)
    output = tmp_path / "fit.nc"

    result = runner.invoke(
        app,
        [
            "sample",
            str(tmp_path / "parts"),
            "--dask-scheduler",
            client.scheduler.address,
            "--draws",
            "100",
            "--tune",
            "100",
            "--chains",
            "2",
            "--seed",
            "3",
            "--json",
            "--output",
            str(output),
            "--no-progress",
        ],
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["data"]["sessions"] == 400 and summary["data"]["transitions"] == 4000
    assert summary["data"]["source"] == str(tmp_path / "parts")
    tree = xr.open_datatree(output)
    assert "observed_data" not in tree.children and tree.attrs["data_sessions"] == 400


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sdebayes.exceptions.DiagnosticWarning")  # short chains
def test_fit_statistics_draws_what_fit_draws(tmp_path):
    from sdebayes.fit import DataDescription, fit, fit_statistics

    trajectories = read_trajectories(paper_sessions_path())
    settings = {"draws": 60, "tune": 60, "chains": 2, "random_seed": 4, "progressbar": False}

    direct = fit(trajectories, **settings)
    indirect = fit_statistics(
        in_memory(trajectories), DataDescription.from_trajectories(trajectories), **settings
    )

    xr.testing.assert_equal(indirect["posterior"].to_dataset(), direct["posterior"].to_dataset())
    assert indirect.attrs["data_sessions"] == 400


def read_trajectories_from(table: pd.DataFrame) -> xr.Dataset:
    from sdebayes.data import trajectories_from_frame

    return trajectories_from_frame(table, source="<table>")


def _written(path, text):
    path.write_text(text)
    return path


def _mkdir(path):
    path.mkdir()
    return path
