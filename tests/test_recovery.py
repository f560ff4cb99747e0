"""Recovery and interval coverage on simulated data, through benchmarks/interval_coverage.py."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "interval_coverage.py"


@pytest.fixture(scope="module")
def coverage():
    """The benchmark script as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("interval_coverage", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_uses_replicates_as_units(coverage):
    rows = [
        {
            "model": "m",
            "sessions": 10,
            "replicate": r,
            "quantity": f"drift[A,0,{k}]",
            "covered50": int(k < r),
            "covered90": 1,
        }
        for r in range(3)
        for k in range(2)
    ]
    summary = coverage.coverage_summary(pd.DataFrame(rows))
    row = summary.iloc[0]
    # per-replicate coverage 0, 0.5, 1: mean 0.5, sd 0.5, standard error 0.5 / sqrt(3)
    assert row["covered50"] == pytest.approx(0.5)
    assert row["se50"] == pytest.approx(0.5 / np.sqrt(3))
    assert row["covered90"] == 1.0 and row["replicates"] == 3
    assert "| m | 10 |" in coverage.markdown_table(
        pd.concat([summary.assign(group=group) for group in coverage.GROUPS])
    )


@pytest.mark.slow
def test_hierarchical_fit_recovers_the_paper_scenario(coverage):
    """One seeded dataset of 100 sessions per strategy, the default model (its compiled graph
    is shared with the other 4-strategy, 3-objective fits of the test session).

    Tolerances: the 52 quantities (36 drift entries, 4 rates, 12 equilibria) are correlated,
    so their coverage varies more than Binomial(52, p) would; the bounds below leave about
    three binomial standard deviations (sqrt(52 * 0.9 * 0.1) = 2.2 intervals at 90%,
    sqrt(52 * 0.25) = 3.6 at 50%) and fail when intervals are far too narrow or biased.
    """
    rows = pd.DataFrame(
        coverage.replicate_coverage(
            "hierarchical", sessions=100, replicate=0, seed=3, draws=500, tune=500
        )
    )
    assert len(rows) == 36 + 4 + 12
    assert rows["covered90"].mean() >= 0.75, rows
    assert 0.25 <= rows["covered50"].mean() <= 0.8, rows
    rates = rows[rows["quantity"].str.startswith("convergence_rate")]
    # 1,000 transitions per strategy pin the rates down to a few hundredths
    assert (rates["median"] - rates["truth"]).abs().max() < 0.1, rates
    assert rows["divergences"].iloc[0] == 0
