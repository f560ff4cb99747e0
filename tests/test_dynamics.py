import numpy as np
import pytest
from numpy.testing import assert_allclose

from sdebayes import dynamics
from sdebayes.specs import DynamicsSettings


def rotation_block(real: float, imag: float) -> np.ndarray:
    return np.array([[real, imag], [-imag, real]])


def test_eigenvalues_sorted_slowest_first_with_complex_pairs():
    drift = np.zeros((3, 3))
    drift[:2, :2] = rotation_block(-0.5, 0.3)
    drift[2, 2] = -0.1
    real, imag = dynamics.sorted_eigenvalues(drift)
    assert_allclose(real, [-0.1, -0.5, -0.5], atol=1e-12)
    assert_allclose(imag, [0.0, 0.3, -0.3], atol=1e-12)


def test_rate_and_discrete_stability():
    real = np.array([-0.2, -1.5])
    imag = np.array([0.0, 0.0])
    assert dynamics.convergence_rate(real) == pytest.approx(0.2)
    # Euler, dt = 1: |1 - 0.2| = 0.8 beats |1 - 1.5| = 0.5; at dt = 2, |1 - 3| = 2 wins.
    assert dynamics.discrete_stability(real, imag) == pytest.approx(0.8)
    assert dynamics.discrete_stability(real, imag, dt=2.0) == pytest.approx(2.0)
    assert dynamics.discrete_stability(real, imag, discretization="exact") == pytest.approx(
        np.exp(-0.2)
    )


def test_equilibrium_solves_and_flags_singular():
    drift = np.array([[[-1.0, 0.0], [0.0, -2.0]], [[0.0, 0.0], [0.0, -1.0]]])
    intercept = np.array([[1.0, 4.0], [1.0, 1.0]])
    point, condition = dynamics.equilibrium(drift, intercept)
    assert_allclose(point[0], [1.0, 2.0], rtol=1e-12)
    assert np.isnan(point[1]).all()
    assert condition[0] == pytest.approx(2.0)


def test_correlation_zero_diagonal_and_constant_variable():
    cov = np.array([[4.0, -2.0, 0.0], [-2.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    corr = dynamics.correlation(cov, zero_diagonal=True)
    assert_allclose(corr, [[0.0, -0.5, 0.0], [-0.5, 0.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)


@pytest.mark.parametrize(
    ("real", "imag", "point", "mode"),
    [
        ([-0.3, -0.5], [0.0, 0.0], [5.0, 5.0], "exponential"),
        ([-0.3, -0.3], [0.2, -0.2], [5.0, 5.0], "oscillatory"),
        ([-0.01, -0.5], [0.0, 0.0], [5.0, 5.0], "boundary"),
        ([-0.3, -0.5], [0.0, 0.0], [12.0, 5.0], "boundary"),
        ([0.1, -0.5], [0.0, 0.0], [5.0, 5.0], "unstable"),
    ],
)
def test_mode_classification(real, imag, point, mode):
    bounds = (np.zeros(2), np.full(2, 10.0))
    code = dynamics.classify_modes(
        np.array(real), np.array(imag), np.array(point), bounds, DynamicsSettings()
    )
    assert dynamics.MODES[int(code)] == mode


def test_pareto_optimal_excludes_dominated_and_undefined():
    equilibria = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 0.0], [np.nan, 9.0]])
    assert dynamics.pareto_optimal(equilibria).tolist() == [False, True, True, False]


def test_standardisation_round_trip(rng):
    import xarray as xr

    scale = np.array([2.0, 0.5, 10.0])
    statistics = xr.Dataset(
        {
            "scale": ("objective", scale),
            "location": ("objective", np.array([1.0, -1.0, 3.0])),
            "centre": (("strategy", "objective"), rng.normal(size=(2, 3))),
        }
    )
    drift = rng.normal(size=(2, 3, 3))
    intercept = rng.normal(size=(2, 3))
    drift_std, centre_drift = dynamics.standardised_coefficients(drift, intercept, statistics)
    chol = np.broadcast_to(np.eye(3), (2, 3, 3))
    back = dynamics.to_original_scale(drift_std, centre_drift, chol, statistics)

    assert_allclose(back["drift"], drift, rtol=1e-12)
    assert_allclose(back["intercept"], intercept, rtol=1e-12, atol=1e-12)
    # Eigenvalues are invariant under the diagonal similarity A = D A' D^-1.
    assert_allclose(
        np.sort_complex(np.linalg.eigvals(drift_std)),
        np.sort_complex(np.linalg.eigvals(drift)),
        rtol=1e-10,
    )
