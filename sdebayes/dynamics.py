r"""Dynamics read off drift matrices: eigenvalues, rates, stability, modes, equilibria.

Every function works on NumPy arrays with any number of leading batch dimensions (chains,
draws, strategies), so the same code turns one set of true parameters or a whole posterior
into derived quantities. :func:`derived_quantities` applies them all to a posterior and
returns an :class:`xarray.Dataset`.

Definitions (see also ``docs/model.md``):

* Eigenvalues of :math:`A_s`, sorted by real part, slowest (largest real part) first.
* Convergence rate :math:`\rho = -\max_i \operatorname{Re} \lambda_i`.
* Discrete stability: spectral radius of :math:`I + A\,\Delta t` (Euler) or of
  :math:`e^{A\Delta t}` (exact transition); below 1 the discrete iteration contracts.
* Dynamic mode: ``unstable`` if :math:`\max \operatorname{Re}\lambda > \delta`;
  ``boundary`` if :math:`|\max \operatorname{Re}\lambda| \le \delta` or the equilibrium
  lies outside the objectives' bounds; ``oscillatory`` if some
  :math:`|\operatorname{Im}\lambda| > \omega`; ``exponential`` otherwise. :math:`\delta` and
  :math:`\omega` come from the ``[dynamics]`` table of the model specification.
* Equilibrium :math:`x^* = -A^{-1} b` (a linear solve).
* Interference: the correlation matrix of one-step changes (diagonal set to 0). Implied by
  the model at the observed states it is :math:`\operatorname{corr}(A C_x A^\top + \Sigma)`.
* One-step :math:`R^2 = 1 - \operatorname{tr} R(B) / \operatorname{tr}(S_{yy} - N \bar y
  \bar y^\top)`, pooled over objectives in their own units.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import xarray as xr

from sdebayes.specs import DynamicsSettings

__all__ = [
    "MODES",
    "classify_modes",
    "convergence_rate",
    "correlation",
    "derived_quantities",
    "discrete_stability",
    "equilibrium",
    "implied_interference",
    "pareto_optimal",
    "sorted_eigenvalues",
    "standardised_coefficients",
    "to_original_scale",
]

logger = logging.getLogger(__name__)

MODES = ("exponential", "oscillatory", "boundary", "unstable")
"""Dynamic modes; the integer code of a mode is its position in this tuple."""

Discretization = Literal["euler", "exact"]


def sorted_eigenvalues(drift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of each drift matrix, slowest first.

    Parameters
    ----------
    drift : numpy.ndarray, shape (..., n, n)

    Returns
    -------
    real, imag : numpy.ndarray, shape (..., n)
        Sorted by decreasing real part; ties (complex pairs) by decreasing imaginary part.

    Examples
    --------
    >>> real, imag = sorted_eigenvalues(np.array([[-1.0, 0.0], [0.0, -0.2]]))
    >>> real.tolist()
    [-0.2, -1.0]
    """
    values = np.linalg.eigvals(drift)
    order = np.lexsort((-values.imag, -values.real), axis=-1)
    values = np.take_along_axis(values, order, axis=-1)
    return values.real, values.imag


def convergence_rate(eigenvalues_real: np.ndarray) -> np.ndarray:
    r"""Decay rate of the slowest mode, :math:`-\max_i \operatorname{Re}\lambda_i`."""
    return -np.max(eigenvalues_real, axis=-1)


def discrete_stability(
    eigenvalues_real: np.ndarray,
    eigenvalues_imag: np.ndarray,
    dt: float = 1.0,
    discretization: Discretization = "euler",
) -> np.ndarray:
    r"""Spectral radius of the discrete-time transition matrix.

    Parameters
    ----------
    eigenvalues_real, eigenvalues_imag : numpy.ndarray, shape (..., n)
    dt : float, default=1.0
        Time step of the discretisation.
    discretization : {"euler", "exact"}, default="euler"
        ``euler``: radius of :math:`I + A\,\Delta t`; ``exact``: of :math:`e^{A\Delta t}`.

    Returns
    -------
    numpy.ndarray, shape (...)
    """
    if discretization == "exact":
        return np.exp(np.max(eigenvalues_real, axis=-1) * dt)
    modulus = np.hypot(1.0 + eigenvalues_real * dt, eigenvalues_imag * dt)
    return np.max(modulus, axis=-1)


def equilibrium(drift: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute the fixed point :math:`x^* = -A^{-1} b` and the condition number of :math:`A`.

    Parameters
    ----------
    drift : numpy.ndarray, shape (..., n, n)
    intercept : numpy.ndarray, shape (..., n)

    Returns
    -------
    point : numpy.ndarray, shape (..., n)
        NaN where :math:`A` is singular.
    condition : numpy.ndarray, shape (...)
        2-norm condition number of :math:`A`; large values flag an equilibrium that the data
        barely determine.
    """
    condition = np.linalg.cond(drift)
    singular = ~np.isfinite(condition) | (condition > 1e12)
    safe = np.where(singular[..., None, None], np.eye(drift.shape[-1]), drift)
    point = -np.linalg.solve(safe, intercept[..., None])[..., 0]
    return np.where(singular[..., None], np.nan, point), condition


def correlation(covariance: np.ndarray, zero_diagonal: bool = False) -> np.ndarray:
    """Correlation matrix of each covariance matrix.

    Parameters
    ----------
    covariance : numpy.ndarray, shape (..., n, n)
    zero_diagonal : bool, default=False
        Set the diagonal to 0, as the published interference matrix does.

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        Entries involving a variable with zero variance are 0.
    """
    sd = np.sqrt(np.clip(np.diagonal(covariance, axis1=-2, axis2=-1), 0.0, None))
    outer = sd[..., :, None] * sd[..., None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.where(outer > 0, covariance / np.where(outer > 0, outer, 1.0), 0.0)
    if zero_diagonal:
        result = result * (1.0 - np.eye(covariance.shape[-1]))
    return result


def implied_interference(
    drift: np.ndarray,
    diffusion_cov: np.ndarray,
    state_cov: np.ndarray,
    discretization: Discretization = "euler",
) -> np.ndarray:
    r"""Interference implied by the model at the observed states, over one unit of time.

    Parameters
    ----------
    drift, diffusion_cov : numpy.ndarray, shape (..., n, n)
    state_cov : numpy.ndarray, shape (..., n, n)
        Empirical covariance of the states the transitions start from.
    discretization : {"euler", "exact"}, default="euler"
        Euler: the change is :math:`A x + b + \varepsilon` with covariance
        :math:`A C_x A^\top + \Sigma`; exact: :math:`(F - I) C_x (F - I)^\top + Q` with
        :math:`F = e^{A}` and :math:`Q` the exact one-step covariance.

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        The correlation matrix of the changes with a zero diagonal.
    """
    if discretization == "exact":
        from sdebayes.transitions import exact_moments

        centre = np.zeros(drift.shape[:-1])
        transition, _, noise = exact_moments(drift, centre, diffusion_cov, np.array([1.0]))
        change_matrix = transition[..., 0, :, :] - np.eye(drift.shape[-1])
        noise = noise[..., 0, :, :]
    else:
        change_matrix, noise = drift, diffusion_cov
    change_cov = change_matrix @ state_cov @ np.swapaxes(change_matrix, -1, -2) + noise
    return correlation(change_cov, zero_diagonal=True)


def classify_modes(
    eigenvalues_real: np.ndarray,
    eigenvalues_imag: np.ndarray,
    equilibrium_point: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    settings: DynamicsSettings | None = None,
) -> np.ndarray:
    r"""Classify each drift matrix into one of :data:`MODES`.

    Parameters
    ----------
    eigenvalues_real, eigenvalues_imag : numpy.ndarray, shape (..., n)
    equilibrium_point : numpy.ndarray, shape (..., n)
    bounds : tuple of numpy.ndarray
        Lower and upper bound of each objective; an equilibrium outside them means the
        objectives drift until the score range stops them.
    settings : DynamicsSettings, optional
        Tolerances :math:`\delta` (``boundary_tolerance``) and :math:`\omega`
        (``oscillation_tolerance``).

    Returns
    -------
    numpy.ndarray of int8, shape (...)
        Index into :data:`MODES`.
    """
    settings = settings or DynamicsSettings()
    slowest = np.max(eigenvalues_real, axis=-1)
    lower, upper = bounds
    outside = ~np.all((equilibrium_point >= lower) & (equilibrium_point <= upper), axis=-1)

    mode = np.zeros(slowest.shape, dtype=np.int8)
    mode[np.any(np.abs(eigenvalues_imag) > settings.oscillation_tolerance, axis=-1)] = 1
    mode[(np.abs(slowest) <= settings.boundary_tolerance) | outside] = 2
    mode[slowest > settings.boundary_tolerance] = 3
    return mode


def pareto_optimal(equilibria: np.ndarray) -> np.ndarray:
    """Whether each strategy's equilibrium is dominated by no other strategy's.

    Higher scores are better. A strategy is dominated when another one is at least as good
    in every objective and strictly better in one.

    Parameters
    ----------
    equilibria : numpy.ndarray, shape (..., strategy, n)

    Returns
    -------
    numpy.ndarray of bool, shape (..., strategy)
        False where the equilibrium is undefined (NaN).

    Examples
    --------
    >>> pareto_optimal(np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 0.0]])).tolist()
    [False, True, True]
    """
    other = equilibria[..., None, :, :]
    this = equilibria[..., :, None, :]
    dominates = np.all(other >= this, axis=-1) & np.any(other > this, axis=-1)
    dominated = np.any(dominates, axis=-1)
    return ~dominated & np.all(np.isfinite(equilibria), axis=-1)


def to_original_scale(
    drift_standardised: np.ndarray,
    centre_drift: np.ndarray,
    diffusion_chol: np.ndarray,
    statistics: xr.Dataset,
) -> dict[str, np.ndarray]:
    r"""Map standardised model parameters back to the objectives' own units.

    With :math:`D = \operatorname{diag}(d)`, location :math:`m` and strategy centre
    :math:`\bar x'_s`: :math:`A = D A' D^{-1}`, :math:`\Sigma = D \Sigma' D` and
    :math:`b = D c' - A (m + D \bar x'_s)`. Eigenvalues and correlations are unchanged by
    the diagonal similarity.

    Parameters
    ----------
    drift_standardised : numpy.ndarray, shape (..., strategy, n, n)
    centre_drift : numpy.ndarray, shape (..., strategy, n)
    diffusion_chol : numpy.ndarray, shape (..., strategy, n, n)
    statistics : xarray.Dataset
        The statistics the model was fitted to (for ``location``, ``scale``, ``centre``).

    Returns
    -------
    dict
        ``drift``, ``intercept`` and ``diffusion_cov`` in original units.
    """
    scale = statistics["scale"].to_numpy()
    centre = statistics["location"].to_numpy() + scale * statistics["centre"].to_numpy()

    drift = drift_standardised * scale[:, None] / scale[None, :]
    intercept = scale * centre_drift - np.einsum("...ij,...j->...i", drift, centre)
    cov_standardised = diffusion_chol @ np.swapaxes(diffusion_chol, -1, -2)
    diffusion_cov = cov_standardised * scale[:, None] * scale[None, :]
    return {"drift": drift, "intercept": intercept, "diffusion_cov": diffusion_cov}


def standardised_coefficients(
    drift: np.ndarray, intercept: np.ndarray, statistics: xr.Dataset
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_original_scale` for the drift: return :math:`A'` and :math:`c'`."""
    scale = statistics["scale"].to_numpy()
    centre = statistics["location"].to_numpy() + scale * statistics["centre"].to_numpy()
    drift_standardised = drift * scale[None, :] / scale[:, None]
    centre_drift = (intercept + np.einsum("...ij,...j->...i", drift, centre)) / scale
    return drift_standardised, centre_drift


def derived_quantities(
    drift: np.ndarray,
    intercept: np.ndarray,
    diffusion_cov: np.ndarray,
    statistics: xr.Dataset,
    bounds: tuple[np.ndarray, np.ndarray],
    settings: DynamicsSettings | None = None,
    dt: float = 1.0,
    discretization: Discretization = "euler",
    sample_dims: tuple[str, ...] = ("chain", "draw"),
) -> xr.Dataset:
    """Every derived quantity for each set of parameters, in the objectives' own units.

    Parameters
    ----------
    drift : numpy.ndarray, shape (*sample, strategy, n, n)
    intercept : numpy.ndarray, shape (*sample, strategy, n)
    diffusion_cov : numpy.ndarray, shape (*sample, strategy, n, n)
    statistics : xarray.Dataset
        Sufficient statistics of the data (for the interference, :math:`R^2` and likelihood).
    bounds : tuple of numpy.ndarray
        Lower and upper bound of each objective, for the mode classification.
    settings : DynamicsSettings, optional
        Mode thresholds.
    dt : float, default=1.0
        Time step for the discrete stability.
    discretization : {"euler", "exact"}, default="euler"
    sample_dims : tuple of str, default=("chain", "draw")
        Names of the leading dimensions.

    Returns
    -------
    xarray.Dataset
        ``drift``, ``intercept``, ``diffusion_cov``, ``diffusion_correlation``,
        ``eigenvalues_real``, ``eigenvalues_imag``, ``convergence_rate``,
        ``discrete_stability``, ``mode``, ``equilibrium``, ``equilibrium_condition``,
        ``interference``, ``r2``, ``pareto_optimal`` and ``loglik``.
    """
    from sdebayes.transitions import fit_measures

    real, imag = sorted_eigenvalues(drift)
    point, condition = equilibrium(drift, intercept)
    scale = statistics["scale"].to_numpy()
    state_cov = statistics["state_cov"].to_numpy() * scale[:, None] * scale[None, :]
    r2, loglik = fit_measures(drift, intercept, diffusion_cov, statistics, discretization)

    sample = tuple(sample_dims)
    strategy = (*sample, "strategy")
    matrix = (*strategy, "objective", "other")
    values = {
        "drift": ((*strategy, "objective", "source"), drift),
        "intercept": ((*strategy, "objective"), intercept),
        "diffusion_cov": (matrix, diffusion_cov),
        "diffusion_correlation": (matrix, correlation(diffusion_cov)),
        "eigenvalues_real": ((*strategy, "eigenvalue"), real),
        "eigenvalues_imag": ((*strategy, "eigenvalue"), imag),
        "convergence_rate": (strategy, convergence_rate(real)),
        "discrete_stability": (strategy, discrete_stability(real, imag, dt, discretization)),
        "mode": (strategy, classify_modes(real, imag, point, bounds, settings)),
        "equilibrium": ((*strategy, "objective"), point),
        "equilibrium_condition": (strategy, condition),
        "interference": (
            matrix,
            implied_interference(drift, diffusion_cov, state_cov, discretization),
        ),
        "r2": (strategy, r2),
        "pareto_optimal": (strategy, pareto_optimal(point)),
        "loglik": (strategy, loglik),
    }
    dataset = xr.Dataset(
        {name: xr.Variable(dims, array) for name, (dims, array) in values.items()},
        coords={
            "strategy": statistics["strategy"].to_numpy(),
            "objective": statistics["objective"].to_numpy(),
            "source": statistics["objective"].to_numpy(),
            "other": statistics["objective"].to_numpy(),
            "eigenvalue": np.arange(drift.shape[-1]),
        },
    )
    dataset["mode"].attrs.update(flag_values=list(range(len(MODES))), flag_meanings=" ".join(MODES))
    return dataset
