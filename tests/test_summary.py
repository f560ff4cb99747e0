import json

import pytest

from sdebayes.exceptions import DataError
from sdebayes.summary import SCHEMA, summarize, summary_tables

pytestmark = pytest.mark.slow

QUANTITY_KEYS = {"mean", "median", "lower", "upper"}


def test_summary_follows_the_schema(paper_fit):
    summary = summarize(paper_fit, strategies=["AI"], ci_prob=0.9)
    json.dumps(summary, allow_nan=False)

    assert summary["schema"] == SCHEMA
    assert summary["ci_prob"] == 0.9
    assert summary["data"]["sessions"] == 400
    assert summary["data"]["transitions"] == 4000
    assert summary["data"]["objectives"] == ["security", "efficiency", "functionality"]
    assert set(summary["diagnostics"]) >= {
        "sampler",
        "chains",
        "draws",
        "max_rhat",
        "min_ess_bulk",
        "divergences",
        "seconds",
    }
    assert list(summary["strategies"]) == ["AI"]

    block = summary["strategies"]["AI"]
    assert set(block["convergence_rate"]) == QUANTITY_KEYS
    assert len(block["drift"]) == 3 and all(len(row) == 3 for row in block["drift"])
    assert len(block["equilibrium"]) == 3
    assert set(block["mode_probabilities"]) == {
        "exponential",
        "oscillatory",
        "boundary",
        "unstable",
    }
    assert sum(block["mode_probabilities"].values()) == pytest.approx(1.0)
    assert 0.0 <= block["pareto_probability"] <= 1.0
    for entry in (block["convergence_rate"], block["r2"], block["equilibrium"][0]):
        assert entry["lower"] <= entry["median"] <= entry["upper"]


def test_interference_diagonal_is_zero(paper_fit):
    block = summarize(paper_fit)["strategies"]["EF"]
    assert all(block["interference"][i][i]["mean"] == 0.0 for i in range(3))


def test_unknown_strategy_lists_available(paper_fit):
    with pytest.raises(DataError, match="'XX': not in the data; available strategies: EF, SF"):
        summarize(paper_fit, strategies=["XX"])


def test_tables_render_each_strategy(paper_fit):
    tables = summary_tables(summarize(paper_fit, strategies=["SF", "FF"]))
    titles = [str(table.title) for table in tables]
    assert titles[0].startswith("Strategy SF") and titles[1].startswith("Strategy FF")
    assert titles[-1] == "Sampling diagnostics"
