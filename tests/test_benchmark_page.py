"""The benchmark page states the verdict its figures support (benchmarks/page_text.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import median
from benchmarks.render_benchmarks import render


def ess_block(production_seconds: float, naive_seconds: float) -> dict:
    runs = [
        {
            "model": "production",
            "sampling_seconds": production_seconds,
            "min_ess": 1000.0,
            "steps_per_draw": 7.0,
            "divergences": 0,
            "seed": 1,
        },
        {
            "model": "naive",
            "sampling_seconds": naive_seconds,
            "min_ess": 1000.0,
            "steps_per_draw": 7.0,
            "divergences": 0,
            "seed": 1,
        },
    ]
    return {"compile_seconds": {"production": 30.0, "naive": 30.0}, "runs": runs}


def scaling_block(small_seconds: float, large_seconds: float) -> dict:
    def run(sessions: int, seconds: float) -> dict:
        return {
            "sessions": sessions,
            "rows": sessions * 44,
            "transitions": sessions * 40,
            "read_seconds": 0.1,
            "statistics_seconds": 0.1,
            "compile_seconds": 25.0,
            "sampling_seconds": seconds,
            "min_ess": 900.0,
            "peak_mib": 500.0,
        }

    return {"runs": [run(100, small_seconds), run(10_000, large_seconds)]}


@pytest.mark.parametrize(
    ("naive_seconds", "verdict"), [(100.0, "| 25.0x | met |"), (10.0, "| 2.5x | **not met** |")]
)
def test_ess_verdict_follows_the_ratio(naive_seconds, verdict):
    page = render({"ess": ess_block(4.0, naive_seconds)}, median)

    assert verdict in page


@pytest.mark.parametrize(
    ("large_seconds", "verdict"), [(5.0, "| 1.25x | met |"), (8.0, "| 2.00x | **not met** |")]
)
def test_scaling_verdict_compares_100_times_more_sessions(large_seconds, verdict):
    page = render({"scaling": scaling_block(4.0, large_seconds)}, median)

    assert "10,000 / 100 sessions per strategy" in page
    assert verdict in page


def test_quick_results_are_labelled_as_a_harness_test():
    page = render({"quick": True, "ess": ess_block(4.0, 100.0)}, median)

    assert "not from a real measurement" in page
