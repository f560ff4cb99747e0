"""PSIS-LOO model comparison: pointwise densities, LOO, the table and the command."""

import json
import re
import warnings

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal
from test_ppc import synthetic_fit
from typer.testing import CliRunner

from sdebayes.cli import app
from sdebayes.cli.compare import _warnings_naming
from sdebayes.compare import LooWarning, compare_models, loo_model, pointwise_loglik
from sdebayes.data import transitions
from sdebayes.exceptions import ConvergenceWarning, SdebayesError

runner = CliRunner()


@pytest.fixture(scope="module")
def small_fit() -> xr.DataTree:
    return synthetic_fit(n_sessions=12, n_steps=4, n_draws=200, jitter=0.002)


def test_pointwise_density_matches_scipy(small_fit):
    """Each transition's density is the Euler MvNormal, checked against SciPy per draw."""
    loglik = pointwise_loglik(small_fit, unit="transition")
    steps = transitions(small_fit["observed_data"].to_dataset())
    posterior = small_fit["posterior"]
    for chain, draw, j in [(0, 0, 0), (1, 57, 13), (0, 199, len(steps["dt"]) - 1)]:
        strategy = str(steps["strategy"].to_numpy()[j])
        values = posterior.sel(chain=chain, draw=draw, strategy=strategy)
        drift, intercept = values["drift"].to_numpy(), values["intercept"].to_numpy()
        cov = values["diffusion_cov"].to_numpy()
        state, dt = steps["state"].to_numpy()[j], float(steps["dt"][j])
        expected = multivariate_normal((drift @ state + intercept) * dt, cov * dt).logpdf(
            steps["change"].to_numpy()[j]
        )
        assert_allclose(
            float(loglik.isel(chain=chain, draw=draw, transition=j)), expected, rtol=1e-10
        )


def test_sessions_sum_their_transitions(small_fit):
    per_transition = pointwise_loglik(small_fit, unit="transition")
    per_session = pointwise_loglik(small_fit, unit="session")
    assert per_session.sizes["session"] == 2 * 12
    first = str(per_session["session"].to_numpy()[0])
    mask = per_transition["session"].to_numpy() == first
    assert_allclose(
        per_session.sel(session=first).to_numpy(),
        per_transition.isel(transition=mask).sum("transition").to_numpy(),
        rtol=1e-12,
    )
    assert list(np.unique(per_session["strategy"].to_numpy())) == ["S1", "S2"]


def test_exact_density_of_irregular_steps_matches_scipy():
    from sdebayes.transitions import exact_moments

    tree = synthetic_fit(n_sessions=4, n_steps=3, times=[0.0, 1.0, 3.0, 3.5], n_draws=20)
    tree.attrs["discretization"] = "exact"
    loglik = pointwise_loglik(tree, unit="transition")
    steps = transitions(tree["observed_data"].to_dataset())
    j = 2
    values = tree["posterior"].sel(chain=1, draw=5, strategy=str(steps["strategy"][j].item()))
    dt = float(steps["dt"][j])
    assert dt == 0.5
    transition, shift, cov = exact_moments(
        values["drift"].to_numpy(),
        values["intercept"].to_numpy(),
        values["diffusion_cov"].to_numpy(),
        np.array([dt]),
    )
    state = steps["state"].to_numpy()[j]
    mean = transition[0] @ state - state + shift[0]
    expected = multivariate_normal(mean, cov[0]).logpdf(steps["change"].to_numpy()[j])
    assert_allclose(float(loglik.isel(chain=1, draw=5, transition=j)), expected, rtol=1e-9)


def test_unknown_unit_is_rejected(small_fit):
    with pytest.raises(ValueError, match="unit='step' is not one of session, transition"):
        pointwise_loglik(small_fit, unit="step")


def test_the_true_model_beats_a_wrong_one(small_fit):
    wrong = small_fit.copy()
    posterior = wrong["posterior"].to_dataset()
    posterior["drift"] = posterior["drift"] * 0.2  # far too weak a pull
    wrong["posterior"] = xr.DataTree(posterior)
    result = compare_models({"right": small_fit, "wrong": wrong})
    assert result["schema"] == "sdebayes.compare/1"
    assert [row["model"] for row in result["ranking"]] == ["right", "wrong"]
    assert result["ranking"][1]["elpd_diff"] < 0
    assert result["n_units"] == 24 and result["unit"] == "session"
    assert set(result["models"]["right"]) >= {"elpd", "se", "p", "pareto_k_max", "n_high_pareto_k"}


@pytest.mark.parametrize("spread", [0.05, 0.3])
def test_high_pareto_k_warns_and_names_the_session(small_fit, spread):
    """Draws that disagree wildly about the sessions make k high (at 0.3 not even estimable:
    NaN, which must count as high too)."""
    rough = small_fit.copy()
    posterior = rough["posterior"].to_dataset()
    rng = np.random.default_rng(4)
    noise = rng.standard_normal(posterior["drift"].shape) * spread
    posterior["drift"] = posterior["drift"] + noise
    rough["posterior"] = xr.DataTree(posterior)
    with pytest.warns(LooWarning, match=r"held-out sessions have Pareto k above 0\.\d+ \(worst"):
        result = loo_model(rough, label="rough")
    assert not float(result.pareto_k.max()) <= result.good_k


def test_compare_needs_two_models_on_the_same_data(small_fit):
    with pytest.raises(SdebayesError, match="at least two models; got 1"):
        compare_models({"only": small_fit})
    other = synthetic_fit(seed=2, n_sessions=12, n_steps=4, n_draws=200)
    with pytest.raises(SdebayesError, match="fitted to different data"):
        compare_models({"a": small_fit, "b": other})


def test_compare_command_rejects_a_single_model(tmp_path):
    result = runner.invoke(app, ["compare", "--model", "hierarchical"])
    assert result.exit_code == 2, result.output
    assert "at least two models" in result.output


def test_compare_command_rejects_duplicate_names():
    result = runner.invoke(app, ["compare", "--model", "pooled", "--model", "pooled"])
    assert result.exit_code == 2, result.output
    assert "named 'pooled' twice" in result.output


def test_compare_command_rejects_an_unknown_unit():
    result = runner.invoke(app, ["compare", "--unit", "step"])
    assert result.exit_code == 2, result.output
    assert "session, transition" in result.output


@pytest.mark.slow
def test_pointwise_densities_add_up_to_the_fit_loglik(paper_fit):
    """The NumPy per-transition densities sum to the sufficient-statistics log-likelihood."""
    loglik = pointwise_loglik(paper_fit, unit="transition")
    total = paper_fit["posterior"]["loglik"].sum("strategy")
    assert_allclose(loglik.sum("transition").to_numpy(), total.to_numpy(), rtol=1e-9)


@pytest.mark.slow
def test_compare_command_prints_json(tmp_path):
    """Hierarchical against pooled on the paper data (4 x 3 like the other tests' fits)."""
    result = runner.invoke(
        app,
        [
            "compare",
            "--model",
            "hierarchical",
            "--model",
            "pooled",
            "--draws",
            "300",
            "--tune",
            "300",
            "--chains",
            "2",
            "--seed",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["unit"] == "session" and document["n_units"] == 400
    assert {row["model"] for row in document["ranking"]} == {"hierarchical", "pooled"}
    # The paper data's strategies have different drift matrices; pooling them must lose.
    assert document["ranking"][0]["model"] == "hierarchical"
    diagnostics = [line for line in result.stderr.splitlines() if ": diagnostic: " in line]
    assert all(
        re.match(r"sdebayes: diagnostic: (hierarchical|pooled)( model)?: ", line)
        for line in diagnostics
    ), diagnostics


def test_each_fit_warning_names_its_model():
    with pytest.warns(ConvergenceWarning, match="^pooled model: max R-hat is 1.2"):
        with _warnings_naming("pooled"):
            warnings.warn("max R-hat is 1.2", ConvergenceWarning, stacklevel=1)
