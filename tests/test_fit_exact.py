"""The exact transition end to end: simulated irregular sessions, fitted with exact steps."""

import json
import warnings

import numpy as np
import pytest

from sdebayes.data import trajectories_from_frame
from sdebayes.exceptions import ConvergenceWarning
from sdebayes.fit import fit
from sdebayes.simulate import paper_scenario, simulate_sessions, true_quantities

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def irregular():
    table = simulate_sessions(paper_scenario(), 40, 8, random_seed=8, mean_dt=2.0)
    return table, trajectories_from_frame(table, source="irregular")


@pytest.fixture(scope="module")
def exact_fit(irregular):
    _, trajectories = irregular
    with warnings.catch_warnings():
        # Short chains miss the production threshold of 1.01; test_exact_fit_converges
        # checks a looser bound suited to their length.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(trajectories, draws=300, tune=400, chains=2, random_seed=3, progressbar=False)


def test_auto_chooses_exact_for_a_time_column(exact_fit):
    assert exact_fit.attrs["discretization"] == "exact"


def test_exact_fit_converges(exact_fit):
    diagnostics = json.loads(exact_fit.attrs["diagnostics"])
    # 2 chains x 300 draws: R-hat 1.05 is a loose bound that still catches a chain stuck in
    # an aliased mode (R-hat 1.5 when that happened) or a broken gradient.
    assert diagnostics["max_rhat"] < 1.05, diagnostics
    assert diagnostics["divergences"] == 0, diagnostics


def test_exact_rates_cover_most_truths(exact_fit, irregular):
    """89% intervals of four rates: all four cover with probability 0.63, three or more with
    0.94; fewer than three would point at a biased model (Euler misses all but FF here)."""
    table, _ = irregular
    truth = true_quantities(paper_scenario(), table)["convergence_rate"].to_numpy()
    rates = exact_fit["posterior"]["convergence_rate"]
    lower = rates.quantile(0.055, dim=("chain", "draw")).to_numpy()
    upper = rates.quantile(0.945, dim=("chain", "draw")).to_numpy()
    covered = (lower <= truth) & (truth <= upper)
    assert covered.sum() >= 3, np.column_stack([lower, truth, upper])


def test_jax_and_numba_builds_of_the_exact_model_agree(irregular):
    """The exact log-density and its gradient are the same under both compilers, at the
    model's initial point and at nearby points (the region a sampler explores).

    1e-9 relative: the two builds run the same algorithm and differ only in rounding;
    points far from the data, where the transition covariance is ill-conditioned, are
    rejected by both but not always at the same threshold, so they are not compared here.
    """
    from pymc.model.transform.optimization import freeze_dims_and_data

    from sdebayes.data import transitions
    from sdebayes.model import build_model
    from sdebayes.specs import load_spec
    from sdebayes.sufficient_stats import standardization, sufficient_statistics

    _, trajectories = irregular
    location, scale = standardization(trajectories)
    strategies = list(dict.fromkeys(trajectories["strategy"].to_numpy()))
    statistics = sufficient_statistics(transitions(trajectories), location, scale, strategies)
    model = freeze_dims_and_data(build_model(statistics, load_spec(None), "exact"))
    builds = {
        mode: (model.compile_logp(mode=mode), model.compile_dlogp(mode=mode))
        for mode in ("NUMBA", "JAX")
    }

    rng = np.random.default_rng(5)
    start = model.initial_point()
    for spread in (0.0, 0.1, 0.3):
        point = {
            name: value + spread * rng.normal(size=value.shape) for name, value in start.items()
        }
        (logp_numba, grad_numba), (logp_jax, grad_jax) = (
            (float(logp(point)), np.asarray(dlogp(point))) for logp, dlogp in builds.values()
        )
        np.testing.assert_allclose(logp_jax, logp_numba, rtol=1e-9)
        np.testing.assert_allclose(
            grad_jax, grad_numba, rtol=1e-9, atol=1e-9 * np.abs(grad_numba).max()
        )
