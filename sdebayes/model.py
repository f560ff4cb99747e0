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
:math:`\Sigma_s = \operatorname{diag}(\sigma_s) R_s \operatorname{diag}(\sigma_s) + f^2 I`
with an LKJ prior on the Cholesky factor of :math:`R_s` and a small floor :math:`f` that keeps
:math:`\Sigma_s` positive definite when an objective never changes within a strategy.
"""

from __future__ import annotations

import logging

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from sdebayes.specs import ModelSpec

__all__ = ["DATA_NAMES", "build_model", "transition_loglik"]

logger = logging.getLogger(__name__)

DATA_NAMES = ("s_zz", "s_zy", "s_yy", "n_transitions")
"""Names of the :func:`pymc.Data` containers, replaceable without recompiling the model."""


def build_model(statistics: xr.Dataset, spec: ModelSpec) -> pm.Model:
    """Build the PyMC model for the given sufficient statistics.

    Parameters
    ----------
    statistics : xarray.Dataset
        As returned by :func:`sdebayes.sufficient_stats.sufficient_statistics`.
    spec : ModelSpec
        Priors and pooling.

    Returns
    -------
    pymc.Model
        Free variables on the standardised scale: ``drift_population`` (partial and complete
        pooling), ``drift_spread`` (partial), ``drift_strategy`` (partial, centred) or
        ``drift_offset`` (partial non-centred, and none), ``centre_drift``,
        ``diffusion_sd`` and ``diffusion_corr_chol``; the deterministic ``drift_standardised``
        and ``diffusion_chol``; and the potential ``transitions`` holding the log-likelihood.
    """
    coords = {
        "strategy": statistics["strategy"].to_numpy(),
        "objective": statistics["objective"].to_numpy(),
        "source": statistics["objective"].to_numpy(),
        "other": statistics["objective"].to_numpy(),
        "entry": ["diagonal", "off_diagonal"],
    }
    with pm.Model(coords=coords) as model:
        data = {
            name: pm.Data(name, statistics[name].to_numpy().astype(float)) for name in DATA_NAMES
        }
        drift = _drift(spec, len(coords["strategy"]), len(coords["objective"]))
        centre_drift = pm.Normal(
            "centre_drift", 0.0, spec.centre_drift.sigma, dims=("strategy", "objective")
        )
        chol = _diffusion_chol(spec, len(coords["objective"]))
        loglik = transition_loglik(drift, centre_drift, chol, **data)
        pm.Potential("transitions", loglik.sum())

    logger.debug("built %s model for %d strategies", spec.name, len(coords["strategy"]))
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
    chol = sd[:, :, None] * corr_chol
    if prior.floor > 0:
        cov = chol @ pt.swapaxes(chol, -1, -2) + prior.floor**2 * np.eye(n_objectives)
        chol = pt.linalg.cholesky(cov)
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
    r"""Log-likelihood of each strategy's transitions from its sufficient statistics.

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
    With :math:`B = [A^\top; c^\top]` the residual scatter is
    :math:`R = S_{yy} - B^\top S_{zy} - S_{zy}^\top B + B^\top S_{zz} B`, and

    .. math::

        \log p = -\frac{Nn}{2}\log 2\pi - N \sum_i \log L_{ii}
        - \frac{1}{2}\operatorname{tr}(\Sigma^{-1} R),

    where the trace is computed with two triangular solves.
    """
    drift = pt.as_tensor(drift)
    centre_drift = pt.as_tensor(centre_drift)
    chol = pt.as_tensor(chol)
    s_zy = pt.as_tensor(s_zy)

    coefficients = pt.concatenate([pt.swapaxes(drift, -1, -2), centre_drift[:, None, :]], axis=1)
    cross = pt.swapaxes(coefficients, -1, -2) @ s_zy
    residual = (
        s_yy
        - cross
        - pt.swapaxes(cross, -1, -2)
        + pt.swapaxes(coefficients, -1, -2) @ s_zz @ coefficients
    )

    half_solved = pt.linalg.solve_triangular(chol, residual, lower=True)
    whitened = pt.linalg.solve_triangular(chol, pt.swapaxes(half_solved, -1, -2), lower=True)
    trace = pt.trace(whitened, axis1=-2, axis2=-1)

    n_objectives = drift.shape[-1]
    log_det = pt.log(pt.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    return (
        -0.5 * n_transitions * n_objectives * np.log(2 * np.pi)
        - n_transitions * log_det
        - 0.5 * trace
    )
