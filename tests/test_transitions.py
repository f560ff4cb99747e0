"""Exact transition moments against scipy, the Lyapunov equation and a fine simulation."""

import numpy as np
import pytest
import scipy.linalg
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal

from sdebayes.simulate import paper_scenario, simulate_sessions
from sdebayes.transitions import (
    exact_moments,
    exact_moments_tensor,
    interval_moments,
    regression_loglik_cov_tensor,
    step_multiples,
    stepped_moments_tensor,
)

DRIFT = np.array([[-0.8, 0.3, 0.0], [-0.2, -0.5, 0.1], [0.05, 0.0, -0.3]])
INTERCEPT = np.array([1.0, -0.5, 2.0])
COV = np.array([[0.5, 0.1, 0.0], [0.1, 0.3, -0.05], [0.0, -0.05, 0.2]])
DT = np.array([0.5, 1.0, 3.0])


def test_transition_is_the_matrix_exponential():
    transition, _, _ = exact_moments(DRIFT, INTERCEPT, COV, DT)
    for k, dt in enumerate(DT):
        assert_allclose(transition[k], scipy.linalg.expm(DRIFT * dt), rtol=1e-12)


def test_shift_and_covariance_match_closed_forms_for_invertible_drift():
    _, shift, covariance = exact_moments(DRIFT, INTERCEPT, COV, DT)
    for k, dt in enumerate(DT):
        transition = scipy.linalg.expm(DRIFT * dt)
        # g = A^-1 (F - I) b and A Q + Q A^T = F Sigma F^T - Sigma (Lyapunov).
        assert_allclose(
            shift[k], np.linalg.solve(DRIFT, (transition - np.eye(3)) @ INTERCEPT), rtol=1e-10
        )
        lyapunov = scipy.linalg.solve_continuous_lyapunov(
            DRIFT, transition @ COV @ transition.T - COV
        )
        assert_allclose(covariance[k], lyapunov, rtol=1e-9, atol=1e-12)


def test_singular_drift_has_the_random_walk_limit():
    zero = np.zeros((3, 3))
    transition, shift, covariance = exact_moments(zero, INTERCEPT, COV, DT)
    for k, dt in enumerate(DT):
        assert_allclose(transition[k], np.eye(3), rtol=0, atol=0)
        assert_allclose(shift[k], INTERCEPT * dt, rtol=1e-12)
        assert_allclose(covariance[k], COV * dt, rtol=1e-12)


def test_near_singular_drift_is_continuous():
    tiny = np.diag([-1e-12, -0.5, -0.3])
    _, shift, _ = exact_moments(tiny, INTERCEPT, COV, np.array([2.0]))
    assert np.isfinite(shift).all()
    assert shift[0, 0] == pytest.approx(INTERCEPT[0] * 2.0, rel=1e-9)


def test_moments_match_a_fine_euler_simulation():
    """10,000 paths with 400 Euler sub-steps over dt = 2: the Euler error is O(dt / 400) and
    the Monte Carlo error of the mean about sd / 100, so 3 standard errors bound both."""
    rng = np.random.default_rng(5)
    dt, substeps, paths = 2.0, 400, 10_000
    h = dt / substeps
    chol = np.linalg.cholesky(COV)
    start = np.array([2.0, -1.0, 0.5])
    state = np.tile(start, (paths, 1))
    for _ in range(substeps):
        noise = rng.standard_normal((paths, 3)) @ chol.T
        state = state + (state @ DRIFT.T + INTERCEPT) * h + np.sqrt(h) * noise

    transition, shift, covariance = exact_moments(DRIFT, INTERCEPT, COV, np.array([dt]))
    mean = transition[0] @ start + shift[0]
    standard_error = np.sqrt(np.diag(covariance[0]) / paths)
    assert np.all(np.abs(state.mean(axis=0) - mean) < 3 * standard_error + 2e-3)
    # Sample covariance: relative error about sqrt(2 / paths) = 1.4%; allow 6%.
    assert_allclose(np.cov(state.T), covariance[0], rtol=0.06, atol=0.01)


def test_pytensor_moments_equal_numpy():
    got = [moment.eval() for moment in exact_moments_tensor(DRIFT, INTERCEPT, COV, DT)]
    for tensor_moment, numpy_moment in zip(
        got, exact_moments(DRIFT, INTERCEPT, COV, DT), strict=True
    ):
        assert_allclose(tensor_moment, numpy_moment, rtol=1e-10, atol=1e-12)


def test_stepped_recursion_equals_direct_exponentials():
    steps = np.array([1.0, 2.0, 5.0])
    unit, multiples = step_multiples(steps)
    stepped = [m.eval() for m in stepped_moments_tensor(DRIFT, INTERCEPT, COV, unit, multiples)]
    for got, expected in zip(stepped, exact_moments(DRIFT, INTERCEPT, COV, steps), strict=True):
        assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_step_multiples():
    assert step_multiples(np.array([0.5, 1.0, 1.5])) == (0.5, (1, 2, 3))
    assert step_multiples(np.array([1.0, np.pi])) is None
    assert step_multiples(np.array([1.0, 100.0])) is None


def test_euler_moments_are_linear_in_dt():
    change, shift, covariance = interval_moments(DRIFT, INTERCEPT, COV, DT, "euler")
    assert_allclose(change[2], DRIFT * 3.0, rtol=1e-15)
    assert_allclose(shift[0], INTERCEPT * 0.5, rtol=1e-15)
    assert_allclose(covariance[1], COV, rtol=1e-15)


def test_irregular_simulation_has_integer_gaps_with_the_mean():
    table = simulate_sessions(paper_scenario(), 200, 10, random_seed=3, mean_dt=2.0)
    gaps = table.groupby("session")["time"].diff().dropna()
    assert set(np.unique(gaps)) <= set(range(1, 100))
    # Geometric gaps with mean 2 have sd sqrt(2); 8,000 gaps give a standard error of 0.016.
    assert gaps.mean() == pytest.approx(2.0, abs=0.06)


def test_mean_dt_below_one_is_rejected():
    with pytest.raises(ValueError, match=r"mean_dt=0\.5 must be at least 1"):
        simulate_sessions(paper_scenario(), 2, 2, mean_dt=0.5)


def test_regression_density_rejects_a_covariance_that_is_not_positive_definite(rng):
    """An overflowing exact covariance can lose positive definiteness in floating point; the
    density must then be -inf, never the finite value that log|det| would give."""
    states = np.column_stack([rng.normal(size=(50, 3)), np.ones(50)])
    coefficients = rng.normal(size=(4, 3))
    changes = states @ coefficients + rng.multivariate_normal(np.zeros(3), COV, size=50)
    statistics = (states.T @ states, states.T @ changes, changes.T @ changes, 50)
    indefinite = np.diag([1.0, 1.0, -1e-9])

    loglik = regression_loglik_cov_tensor(
        np.stack([coefficients, coefficients]), np.stack([COV, indefinite]), *statistics
    ).eval()

    expected = multivariate_normal(np.zeros(3), COV).logpdf(changes - states @ coefficients)
    # 1e-10 relative: sums of squares against per-row densities, only rounding differs.
    assert_allclose(loglik[0], expected.sum(), rtol=1e-10)
    assert loglik[1] == -np.inf
