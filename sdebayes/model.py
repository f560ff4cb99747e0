r"""The PyMC model of the Euler-Maruyama transitions of every strategy.

For strategy :math:`s` the standardised scores follow

.. math::

    \Delta x' = (A_s x^c + c_s)\,\Delta t + L_s\,\sqrt{\Delta t}\,\varepsilon,
    \qquad \varepsilon \sim \mathcal{N}(0, I),

where :math:`x^c` is the state centred at the strategy's mean and :math:`c_s` the expected
change per unit time at that mean. Sampling :math:`c_s` instead of the intercept
:math:`b_s = c_s - A_s \bar x_s` removes the strong posterior correlation between drift and
intercept. The likelihood is evaluated from per-strategy sufficient statistics
(:mod:`sdebayes.sufficient_stats`), so its cost does not grow with the number of sessions.

The drift matrices are pooled according to the specification:

* ``partial``: :math:`A_s \sim \mathcal{N}(A_{pop}, \tau)` entrywise with one spread
  :math:`\tau \sim \text{HalfNormal}` for the diagonal and one for the off-diagonal
  entries, sampled either centred (``drift_strategy``) or non-centred
  (:math:`A_s = A_{pop} + \tau Z_s`, :math:`Z_s \sim \mathcal{N}(0, 1)`, the variable
  ``drift_offset``), as the specification's ``parameterization`` says.
* ``complete``: one :math:`A` for all strategies.
* ``none``: independent :math:`A_s` with the population prior.

The diffusion covariance is
:math:`\Sigma_s = \operatorname{diag}(\tilde\sigma_s) R_s \operatorname{diag}(\tilde\sigma_s)`
with :math:`\tilde\sigma = \sqrt{\sigma^2 + f^2}`, an LKJ prior on the Cholesky factor of
:math:`R_s`, :math:`\sigma \sim \text{HalfNormal}` and a small floor :math:`f` that keeps
:math:`\Sigma_s` positive definite when an objective never changes within a strategy.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from sdebayes.specs import ModelSpec
from sdebayes.transitions import (
    exact_moments_tensor,
    regression_loglik_cov_tensor,
    regression_loglik_tensor,
    step_multiples,
    stepped_moments_tensor,
)

__all__ = [
    "DATA_NAMES",
    "build_model",
    "exact_transition_loglik",
    "transition_loglik",
]

logger = logging.getLogger(__name__)

Discretization = Literal["euler", "exact"]

DATA_NAMES: dict[str, tuple[str, ...]] = {
    "euler": ("s_zz", "s_zy", "s_yy", "n_transitions"),
    "exact": ("interval_dt", "interval_s_zz", "interval_s_zy", "interval_s_yy", "interval_n"),
}
"""Per discretisation, the :func:`pymc.Data` containers that a fit can replace without
recompiling the model."""


def build_model(
    statistics: xr.Dataset, spec: ModelSpec, discretization: Discretization = "euler"
) -> pm.Model:
    """Build the PyMC model for the given sufficient statistics.

    Parameters
    ----------
    statistics : xarray.Dataset
        As returned by :func:`sdebayes.sufficient_stats.sufficient_statistics`.
    spec : ModelSpec
        Priors and pooling.
    discretization : {"euler", "exact"}, default="euler"
        Euler-Maruyama transitions (the published model) or the exact transition of the
        linear SDE, which matters when time steps are long or uneven.

    Returns
    -------
    pymc.Model
        Free variables on the standardised scale: ``drift_population`` (partial and complete
        pooling), ``drift_spread`` (partial), ``drift_strategy`` (partial, centred) or
        ``drift_offset`` (partial non-centred, and none), ``centre_drift``,
        ``diffusion_sd`` and ``diffusion_corr_chol``; the deterministic ``drift_standardised``
        and ``diffusion_chol``; and the potential ``transitions`` holding the log-likelihood.
    """
    coords: dict[str, Any] = {
        "strategy": statistics["strategy"].to_numpy(),
        "objective": statistics["objective"].to_numpy(),
        "source": statistics["objective"].to_numpy(),
        "other": statistics["objective"].to_numpy(),
        "entry": ["diagonal", "off_diagonal"],
    }
    with pm.Model(coords=coords) as model:
        data = {
            name: pm.Data(name, statistics[name].to_numpy().astype(float))
            for name in DATA_NAMES[discretization]
        }
        drift = _drift(spec, len(coords["strategy"]), len(coords["objective"]))
        centre_drift = pm.Normal(
            "centre_drift", 0.0, spec.centre_drift.sigma, dims=("strategy", "objective")
        )
        chol = _diffusion_chol(spec, len(coords["objective"]))
        if discretization == "exact":
            multiples = step_multiples(statistics["interval_dt"].to_numpy())
            loglik = exact_transition_loglik(drift, centre_drift, chol, **data, multiples=multiples)
        else:
            loglik = transition_loglik(drift, centre_drift, chol, **data)
        pm.Potential("transitions", loglik.sum())

    logger.debug(
        "built %s model (%s) for %d strategies", spec.name, discretization, len(coords["strategy"])
    )
    return model


def _drift(spec: ModelSpec, n_strategies: int, n_objectives: int) -> pt.TensorVariable:
    prior = spec.drift
    eye = np.eye(n_objectives)
    mu = prior.diagonal_mu * eye
    sigma = prior.diagonal_sigma * eye + prior.off_diagonal_sigma * (1.0 - eye)
    dims = ("strategy", "objective", "source")

    if spec.pooling == "none":
        offset = pm.Normal("drift_offset", 0.0, 1.0, dims=dims)
        return pm.Deterministic("drift_standardised", mu + sigma * offset, dims=dims)

    population = pm.Normal("drift_population", mu, sigma, dims=("objective", "source"))
    if spec.pooling == "complete":
        shared = pt.broadcast_to(population, (n_strategies, n_objectives, n_objectives))
        return pm.Deterministic("drift_standardised", shared, dims=dims)

    spread_prior = spec.drift_spread
    spread = pm.HalfNormal(
        "drift_spread",
        np.array([spread_prior.diagonal_sigma, spread_prior.off_diagonal_sigma]),
        dims="entry",
    )
    spread = spread[0] * eye + spread[1] * (1.0 - eye)
    if spec.parameterization == "centred":
        strategy_drift = pm.Normal("drift_strategy", population, spread, dims=dims)
        return pm.Deterministic("drift_standardised", strategy_drift, dims=dims)
    offset = pm.Normal("drift_offset", 0.0, 1.0, dims=dims)
    return pm.Deterministic("drift_standardised", population + spread * offset, dims=dims)


def _diffusion_chol(spec: ModelSpec, n_objectives: int) -> pt.TensorVariable:
    prior = spec.diffusion
    sd = pm.HalfNormal("diffusion_sd", prior.sd_sigma, dims=("strategy", "objective"))
    n_strategies = len(pm.modelcontext(None).coords["strategy"])
    corr_chol = pm.LKJCorr(
        "diffusion_corr_chol",
        n=n_objectives,
        eta=prior.eta,
        shape=(n_strategies, n_objectives, n_objectives),
        dims=("strategy", "objective", "other"),
    )
    # Flooring the standard deviations keeps Sigma positive definite without a Cholesky
    # decomposition in the graph (whose batched gradient Numba runs in object mode).
    floored = pt.sqrt(sd**2 + prior.floor**2) if prior.floor > 0 else sd
    chol = floored[:, :, None] * corr_chol
    return pm.Deterministic("diffusion_chol", chol, dims=("strategy", "objective", "other"))


def transition_loglik(
    drift: pt.TensorLike,
    centre_drift: pt.TensorLike,
    chol: pt.TensorLike,
    s_zz: pt.TensorLike,
    s_zy: pt.TensorLike,
    s_yy: pt.TensorLike,
    n_transitions: pt.TensorLike,
) -> pt.TensorVariable:
    r"""Euler-Maruyama log-likelihood of each strategy's transitions from its statistics.

    Parameters
    ----------
    drift : tensor, shape (strategy, objective, objective)
        Drift matrices :math:`A_s` on the standardised scale.
    centre_drift : tensor, shape (strategy, objective)
        Expected change per unit time at the strategy's mean state, :math:`c_s`.
    chol : tensor, shape (strategy, objective, objective)
        Lower Cholesky factors :math:`L_s` of the diffusion covariance.
    s_zz, s_zy, s_yy, n_transitions : tensor
        Sufficient statistics as defined in :mod:`sdebayes.sufficient_stats`.

    Returns
    -------
    tensor, shape (strategy,)

    Notes
    -----
    Dividing each transition by :math:`\sqrt{\Delta t}` makes it a regression with
    coefficients :math:`B = [A^\top; c^\top]` and covariance :math:`\Sigma` whatever the
    time step, evaluated by :func:`sdebayes.transitions.regression_loglik_tensor`.
    """
    drift = pt.as_tensor(drift)
    centre_drift = pt.as_tensor(centre_drift)
    coefficients = pt.concatenate([pt.swapaxes(drift, -1, -2), centre_drift[:, None, :]], axis=1)
    return regression_loglik_tensor(coefficients, chol, s_zz, s_zy, s_yy, n_transitions)


def exact_transition_loglik(
    drift: pt.TensorLike,
    centre_drift: pt.TensorLike,
    chol: pt.TensorLike,
    interval_dt: pt.TensorLike,
    interval_s_zz: pt.TensorLike,
    interval_s_zy: pt.TensorLike,
    interval_s_yy: pt.TensorLike,
    interval_n: pt.TensorLike,
    multiples: tuple[float, tuple[int, ...]] | None = None,
) -> pt.TensorVariable:
    r"""Exact (Ornstein-Uhlenbeck) log-likelihood of each strategy's transitions.

    Transitions are grouped by their time step; each group is a regression of the change
    on :math:`[x^c, 1]` with coefficients :math:`[(F - I)^\top; g^\top]` and covariance
    :math:`Q` from :func:`sdebayes.transitions.exact_moments_tensor`, so the model costs two
    matrix exponentials per strategy and distinct time step, whatever the number of
    transitions.

    Parameters
    ----------
    drift, centre_drift, chol : tensor
        As in :func:`transition_loglik`.
    interval_dt : tensor, shape (interval,)
        The distinct time steps.
    interval_s_zz, interval_s_zy, interval_s_yy, interval_n : tensor
        Per strategy and time step statistics (see :mod:`sdebayes.sufficient_stats`).
    multiples : (float, tuple of int), optional
        When every time step is a whole multiple of a unit (see
        :func:`sdebayes.transitions.step_multiples`), the unit and the multiples: the moments
        then come from one pair of exponentials per strategy and a recursion, instead of one
        pair per distinct step.

    Returns
    -------
    tensor, shape (strategy,)
    """
    drift = pt.as_tensor(drift)
    chol = pt.as_tensor(chol)
    n = drift.type.shape[-1] or drift.shape[-1]
    cov = chol @ pt.swapaxes(chol, -1, -2)
    if multiples is None:
        moments = exact_moments_tensor(drift, centre_drift, cov, interval_dt)
    else:
        moments = stepped_moments_tensor(drift, centre_drift, cov, *multiples)
    transition, shift, covariance = moments

    change_matrix = transition - pt.eye(n)
    coefficients = pt.concatenate(
        [pt.swapaxes(change_matrix, -1, -2), shift[..., None, :]], axis=-2
    )
    per_interval = regression_loglik_cov_tensor(
        coefficients,
        covariance,
        interval_s_zz,
        interval_s_zy,
        interval_s_yy,
        interval_n,
    )
    return per_interval.sum(axis=-1)
