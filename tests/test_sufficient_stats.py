"""The sufficient-statistics likelihood against the per-transition multivariate normal density."""

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
import scipy.linalg
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal

from sdebayes import dynamics
from sdebayes.data import trajectories_from_frame, transitions
from sdebayes.exceptions import DataError
from sdebayes.model import exact_transition_loglik, transition_loglik
from sdebayes.sufficient_stats import standardization, sufficient_statistics
from sdebayes.transitions import fit_measures

N_OBJECTIVES = 3
STRATEGIES = ("S1", "S2")


def random_table(rng, irregular: bool) -> pd.DataFrame:
    """Sessions of uneven length on very different scales, with random gaps in time."""
    rows = []
    for k in range(12):
        strategy = STRATEGIES[k % 2]
        time = 0.0
        for step in range(int(rng.integers(2, 7))):
            time += rng.uniform(0.2, 3.0) if irregular else 1.0
            scores = rng.normal([5.0, 100.0, 0.01], [2.0, 30.0, 0.005])
            rows.append([f"s{k}", strategy, step, time, *scores])
    columns = ["session", "strategy", "step", "time", "a", "b", "c"]
    return pd.DataFrame(rows, columns=columns)


def random_parameters(rng, scale):
    """Original-unit drift, intercept and diffusion Cholesky factor per strategy."""
    n_strategies = len(STRATEGIES)
    drift = rng.normal(0.0, 0.3, (n_strategies, N_OBJECTIVES, N_OBJECTIVES))
    drift = drift * scale[:, None] / scale[None, :]
    intercept = rng.normal(0.0, 1.0, (n_strategies, N_OBJECTIVES)) * scale
    factor = np.tril(rng.normal(0.0, 0.5, (n_strategies, N_OBJECTIVES, N_OBJECTIVES)))
    factor[:, range(N_OBJECTIVES), range(N_OBJECTIVES)] = rng.uniform(0.5, 1.5, (2, 3))
    diffusion_cov = factor @ np.swapaxes(factor, -1, -2) * scale[:, None] * scale[None, :]
    return drift, intercept, diffusion_cov


def direct_loglik(steps, drift, intercept, diffusion_cov):
    """Sum of per-transition log densities of dx ~ N((A x + b) dt, Sigma dt)."""
    totals = []
    for s, name in enumerate(STRATEGIES):
        mine = steps.isel(transition=steps["strategy"].to_numpy() == name)
        total = 0.0
        for state, change, dt in zip(
            mine["state"].to_numpy(), mine["change"].to_numpy(), mine["dt"].to_numpy(), strict=True
        ):
            mean = (drift[s] @ state + intercept[s]) * dt
            total += multivariate_normal(mean, diffusion_cov[s] * dt).logpdf(change)
        totals.append(total)
    return np.array(totals)


@pytest.fixture(params=[False, True], ids=["unit-dt", "irregular-dt"])
def problem(request, rng):
    table = random_table(rng, irregular=request.param)
    if not request.param:
        table = table.drop(columns="time")
    trajectories = trajectories_from_frame(table, source="random")
    steps = transitions(trajectories)
    location, scale = standardization(trajectories)
    statistics = sufficient_statistics(steps, location, scale, STRATEGIES)
    return steps, statistics, random_parameters(rng, scale)


def test_numpy_loglik_equals_per_transition_density(problem):
    steps, statistics, (drift, intercept, diffusion_cov) = problem
    _, got = fit_measures(drift, intercept, diffusion_cov, statistics, "euler")

    # 1e-8 relative: both sides are exact; the only error is floating-point summation order.
    assert_allclose(got, direct_loglik(steps, drift, intercept, diffusion_cov), rtol=1e-8)


def test_pytensor_loglik_equals_per_transition_density(problem):
    steps, statistics, (drift, intercept, diffusion_cov) = problem
    drift_std, centre_drift = dynamics.standardised_coefficients(drift, intercept, statistics)
    scale = statistics["scale"].to_numpy()
    chol_std = np.linalg.cholesky(diffusion_cov / (scale[:, None] * scale[None, :]))

    standardised = transition_loglik(
        drift_std,
        centre_drift,
        chol_std,
        statistics["s_zz"].to_numpy(),
        statistics["s_zy"].to_numpy(),
        statistics["s_yy"].to_numpy(),
        statistics["n_transitions"].to_numpy(),
    ).eval()
    # The model works on y = dx / (scale sqrt(dt)); undo that change of variables.
    n = statistics["n_transitions"].to_numpy()
    jacobian = n * np.log(scale).sum() + 0.5 * N_OBJECTIVES * statistics["log_dt_sum"].to_numpy()

    expected = direct_loglik(steps, drift, intercept, diffusion_cov)
    assert_allclose(standardised - jacobian, expected, rtol=1e-8)


def direct_exact_loglik(steps, drift, intercept, diffusion_cov):
    """Per-transition exact OU densities, with moments from scipy and numerical quadrature."""
    totals = []
    for s, name in enumerate(STRATEGIES):
        mine = steps.isel(transition=steps["strategy"].to_numpy() == name)
        total = 0.0
        for state, change, dt in zip(
            mine["state"].to_numpy(), mine["change"].to_numpy(), mine["dt"].to_numpy(), strict=True
        ):
            transition = scipy.linalg.expm(drift[s] * dt)
            # Without inverting A: integral of expm(A u) b du by Gauss-Legendre quadrature.
            nodes, weights = np.polynomial.legendre.leggauss(40)
            u = 0.5 * dt * (nodes + 1.0)
            kernels = np.array([scipy.linalg.expm(drift[s] * t) for t in u])
            shift = 0.5 * dt * np.einsum("k,kij,j->i", weights, kernels, intercept[s])
            noise = (
                0.5
                * dt
                * np.einsum("k,kij,jl,kml->im", weights, kernels, diffusion_cov[s], kernels)
            )
            mean = transition @ state + shift - state
            total += multivariate_normal(mean, noise).logpdf(change)
        totals.append(total)
    return np.array(totals)


def test_exact_loglik_equals_per_transition_density(problem):
    steps, statistics, (drift, intercept, diffusion_cov) = problem
    _, got = fit_measures(drift, intercept, diffusion_cov, statistics, "exact")

    # 1e-8 relative: 40-point Gauss-Legendre quadrature of a smooth integrand over at most
    # 3 time units is accurate far beyond that; the rest is floating-point rounding.
    assert_allclose(got, direct_exact_loglik(steps, drift, intercept, diffusion_cov), rtol=1e-8)


def test_exact_pytensor_loglik_equals_numpy(problem):
    _, statistics, (drift, intercept, diffusion_cov) = problem
    drift_std, centre_drift = dynamics.standardised_coefficients(drift, intercept, statistics)
    scale = statistics["scale"].to_numpy()
    chol_std = np.linalg.cholesky(diffusion_cov / (scale[:, None] * scale[None, :]))

    standardised = exact_transition_loglik(
        pt.as_tensor(drift_std, ndim=3).reshape((2, 3, 3)),
        centre_drift,
        chol_std,
        *(
            statistics[name].to_numpy()
            for name in (
                "interval_dt",
                "interval_s_zz",
                "interval_s_zy",
                "interval_s_yy",
                "interval_n",
            )
        ),
    ).eval()
    n = statistics["n_transitions"].to_numpy()
    _, expected = fit_measures(drift, intercept, diffusion_cov, statistics, "exact")
    assert_allclose(standardised - n * np.log(scale).sum(), expected, rtol=1e-8)


def test_euler_and_exact_r2_agree_on_unit_steps_for_small_drift(problem):
    """For a tiny drift the two transitions coincide to first order."""
    _, statistics, (drift, intercept, diffusion_cov) = problem
    r2_euler, _ = fit_measures(1e-6 * drift, intercept, diffusion_cov, statistics, "euler")
    r2_exact, _ = fit_measures(1e-6 * drift, intercept, diffusion_cov, statistics, "exact")
    assert_allclose(r2_euler, r2_exact, atol=1e-4)


@pytest.mark.parametrize("discretization", ["euler", "exact"])
def test_a_draw_with_singular_covariance_gets_nan_not_an_error(problem, discretization, caplog):
    """One unusable draw (zero diffusion) must not stop the log-likelihood of the others."""
    _, statistics, (drift, intercept, diffusion_cov) = problem
    draws = np.stack([diffusion_cov, np.zeros_like(diffusion_cov)])
    repeated = (np.stack([drift, drift]), np.stack([intercept, intercept]))

    _, loglik = fit_measures(*repeated, draws, statistics, discretization)

    _, expected = fit_measures(drift, intercept, diffusion_cov, statistics, discretization)
    assert_allclose(loglik[0], expected, rtol=1e-12)
    assert np.isnan(loglik[1]).all()
    assert "singular or not finite" in caplog.text


def test_strategy_without_transitions_is_named(rng):
    table = random_table(rng, irregular=False)
    single = pd.DataFrame([["lonely", "S3", 0, 1.0, 1.0, 2.0, 3.0]], columns=table.columns)
    trajectories = trajectories_from_frame(pd.concat([table, single]), source="t.csv")
    location, scale = standardization(trajectories)
    with pytest.raises(DataError, match=r"t\.csv: strategy\(ies\) 'S3' have no transitions"):
        sufficient_statistics(transitions(trajectories), location, scale, ["S1", "S2", "S3"])
