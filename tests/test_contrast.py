"""Strategy contrasts: differences draw by draw, P(A > B), and the contrast command."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from rich.console import Console
from test_ppc import synthetic_fit
from typer.testing import CliRunner

from sdebayes.cli import app
from sdebayes.contrast import contrast, contrast_table, strategy_differences
from sdebayes.exceptions import DataError
from sdebayes.io_netcdf import save_posterior

runner = CliRunner()


def hand_made_tree(rng: np.random.Generator) -> xr.DataTree:
    """Two strategies whose draws are known: A's rate is B's plus N(0.05, 0.1) noise."""
    shape = (2, 500)
    rate_b = rng.normal(0.3, 0.02, shape)
    rate_a = rate_b + rng.normal(0.05, 0.1, shape)
    equilibrium = rng.normal([5.0, 6.0], 0.5, (*shape, 2, 2))
    equilibrium[0, :10, 0, 1] = np.nan  # undefined equilibria of A in 10 draws
    interference = np.zeros((*shape, 2, 2, 2))
    interference[..., 0, 1] = interference[..., 1, 0] = rng.uniform(-0.5, 0.5, (*shape, 2))
    posterior = xr.Dataset(
        {
            "convergence_rate": (("chain", "draw", "strategy"), np.stack([rate_a, rate_b], -1)),
            "equilibrium": (("chain", "draw", "strategy", "objective"), equilibrium),
            "interference": (("chain", "draw", "strategy", "objective", "other"), interference),
        },
        coords={"strategy": ["A", "B"], "objective": ["x", "y"], "other": ["x", "y"]},
    )
    return xr.DataTree.from_dict({"posterior": posterior})


@pytest.fixture
def tree(rng):
    return hand_made_tree(rng)


def entry(result, quantity, name=None):
    return next(
        row for row in result["contrasts"] if row["quantity"] == quantity and row["entry"] == name
    )


def test_rate_contrast_matches_a_direct_computation(tree):
    result = contrast(tree, "A", "B", ci_prob=0.9)
    rates = tree["posterior"]["convergence_rate"].values.reshape(-1, 2)
    difference = rates[:, 0] - rates[:, 1]
    row = entry(result, "convergence_rate")
    assert row["p_greater"] == pytest.approx(np.mean(difference > 0), abs=1e-4)
    low, high = np.quantile(difference, [0.05, 0.95])
    assert_allclose(
        [row["difference"][key] for key in ("mean", "lower", "upper")],
        [difference.mean(), low, high],
        atol=1e-4,
    )
    assert row["first"] == pytest.approx(rates[:, 0].mean(), abs=1e-4)
    assert row["draws"] == 1000


def test_the_difference_recovers_the_known_shift(tree):
    # rate_A - rate_B ~ N(0.05, 0.1) by construction: over 1000 draws the mean is within
    # 4 standard errors (4 * 0.1 / sqrt(1000) = 0.013) and P(A > B) near Phi(0.5) = 0.69.
    row = entry(contrast(tree, "A", "B"), "convergence_rate")
    assert row["difference"]["mean"] == pytest.approx(0.05, abs=0.013)
    assert row["p_greater"] == pytest.approx(0.69, abs=0.06)


def test_reversing_the_pair_flips_signs_and_probabilities(tree):
    forward, backward = contrast(tree, "A", "B"), contrast(tree, "B", "A")
    for one, other in zip(forward["contrasts"], backward["contrasts"], strict=True):
        assert one["difference"]["mean"] == pytest.approx(-other["difference"]["mean"], abs=2e-4)
        # continuous draws never tie, so P(A > B) + P(B > A) = 1 up to rounding to 1e-4
        assert one["p_greater"] + other["p_greater"] == pytest.approx(1.0, abs=2e-4)


def test_undefined_equilibria_are_left_out_draw_by_draw(tree):
    row = entry(contrast(tree, "A", "B"), "equilibrium", "y")
    assert row["draws"] == 990
    assert entry(contrast(tree, "A", "B"), "equilibrium", "x")["draws"] == 1000


def test_contrasts_list_every_entry_once(tree):
    result = contrast(tree, "A", "B")
    labels = [(row["quantity"], row["entry"]) for row in result["contrasts"]]
    assert labels == [
        ("convergence_rate", None),
        ("equilibrium", "x"),
        ("equilibrium", "y"),
        ("interference", "x~y"),
    ]
    assert result["schema"] == "sdebayes.contrast/1"
    json.dumps(result, allow_nan=False)


def test_differences_keep_the_draws(tree):
    differences = strategy_differences(tree, "A", "B")
    assert differences["convergence_rate"].dims == ("chain", "draw")
    assert differences.sizes == {"chain": 2, "draw": 500, "objective": 2, "other": 2}


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("A", "Z", r"strategy 'Z' is not in the posterior; available strategies: A, B"),
        ("A", "A", r"both strategies are 'A'; pass two different ones"),
    ],
)
def test_bad_pairs_are_rejected(tree, first, second, message):
    with pytest.raises(DataError, match=message):
        contrast(tree, first, second)


def test_bad_ci_prob_is_rejected(tree):
    with pytest.raises(ValueError, match=r"ci_prob=1\.2 must lie strictly between 0 and 1"):
        contrast(tree, "A", "B", ci_prob=1.2)


def test_table_names_both_strategies(tree):
    console = Console(width=160, record=True)
    console.print(contrast_table(contrast(tree, "A", "B")))
    text = console.export_text()
    assert "P(A > B)" in text and "equilibrium y" in text and "interference x ~ y" in text


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("contrast") / "fit.nc"
    return save_posterior(synthetic_fit(n_sessions=10, jitter=0.02), path)


def test_contrast_command_prints_json(saved):
    result = runner.invoke(app, ["contrast", str(saved), "S2", "S1", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["first"], document["second"]) == ("S2", "S1")
    assert entry(document, "convergence_rate")["p_greater"] is not None


def test_contrast_command_prints_a_table(saved):
    result = runner.invoke(app, ["contrast", str(saved), "S1", "S2"])
    assert result.exit_code == 0, result.output
    assert "P(S1 > S2)" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["S1", "S9"], r"strategy 'S9' is not in the posterior"),
        (["S1", "S1"], r"both strategies are 'S1'"),
        (["S1", "S2", "--ci-prob", "0"], r"0\.0 must lie between 0 and 1"),
    ],
)
def test_contrast_command_errors_are_one_line(saved, arguments, message):
    result = runner.invoke(app, ["contrast", str(saved), *arguments])
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output


@pytest.mark.slow
def test_contrast_on_the_default_posterior(paper_fit, tmp_path):
    # On the paper data SF's slowest mode decays about three times faster than EF's
    # (true rates 1.08 and 0.33), a gap of more than 20 posterior sds: P(SF > EF) = 1.
    path = save_posterior(paper_fit, tmp_path / "paper.nc")
    result = runner.invoke(app, ["contrast", str(path), "SF", "EF", "--json"])
    assert result.exit_code == 0, result.output
    row = entry(json.loads(result.stdout), "convergence_rate")
    assert row["p_greater"] == 1.0
    assert 0.6 < row["difference"]["lower"] < row["difference"]["upper"] < 0.9
