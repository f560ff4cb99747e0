"""The naive formulation of the sdebayes model, for the effective-samples benchmark only.

Same priors as the production model (``sdebayes.model.build_model`` with a specification),
on the same standardised scores, but written the way a first attempt would be:

* one multivariate normal density per transition (vectorised over each strategy's
  transitions) instead of the sufficient statistics;
* states not centred at each strategy's mean;
* the intercept ``b_s`` sampled directly (with the prior of ``c_s``), not the drift at the
  centre ``c_s = A_s m_s + b_s``.

It is not part of the package: it exists to measure what the production formulation buys.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from sdebayes.data import transitions
from sdebayes.specs import ModelSpec
from sdebayes.sufficient_stats import standardization

__all__ = ["build_naive_model"]


def build_naive_model(trajectories: xr.Dataset, spec: ModelSpec) -> pm.Model:
    """Build the per-transition model with unit time steps (the bundled data's Euler model).

    Parameters
    ----------
    trajectories : xarray.Dataset
        As returned by :func:`sdebayes.data.read_trajectories`; every time step must be 1.
    spec : ModelSpec
        A partially pooled, centred specification (the default ``hierarchical``).

    Returns
    -------
    pymc.Model
        Free variables ``drift_population``, ``drift_spread``, ``drift_strategy``,
        ``intercept``, ``diffusion_sd`` and ``diffusion_corr_chol``; the deterministic
        ``drift_standardised`` has the production model's name and dimensions.
    """
    if spec.pooling != "partial" or spec.parameterization != "centred":
        raise ValueError("the naive model mirrors the default hierarchical, centred model only")
    steps = transitions(trajectories)
    if not np.all(steps["dt"].to_numpy() == 1.0):
        raise ValueError("the naive model assumes unit time steps")
    location, scale = standardization(trajectories)
    state = (steps["state"].to_numpy() - location) / scale
    change = steps["change"].to_numpy() / scale
    strategy_of = steps["strategy"].to_numpy()
    strategies = list(dict.fromkeys(trajectories["strategy"].to_numpy()))
    objectives = trajectories["objective"].to_numpy()
    n = len(objectives)

    coords = {"strategy": strategies, "objective": objectives, "source": objectives}
    coords.update(other=objectives, entry=["diagonal", "off_diagonal"])
    with pm.Model(coords=coords) as model:
        eye = np.eye(n)
        prior = spec.drift
        mu = prior.diagonal_mu * eye
        sigma = prior.diagonal_sigma * eye + prior.off_diagonal_sigma * (1.0 - eye)
        population = pm.Normal("drift_population", mu, sigma, dims=("objective", "source"))
        spread = pm.HalfNormal(
            "drift_spread",
            np.array([spec.drift_spread.diagonal_sigma, spec.drift_spread.off_diagonal_sigma]),
            dims="entry",
        )
        spread = spread[0] * eye + spread[1] * (1.0 - eye)
        dims = ("strategy", "objective", "source")
        drift = pm.Normal("drift_strategy", population, spread, dims=dims)
        pm.Deterministic("drift_standardised", drift, dims=dims)
        intercept = pm.Normal(
            "intercept", 0.0, spec.centre_drift.sigma, dims=("strategy", "objective")
        )
        sd = pm.HalfNormal("diffusion_sd", spec.diffusion.sd_sigma, dims=("strategy", "objective"))
        corr_chol = pm.LKJCorr(
            "diffusion_corr_chol",
            n=n,
            eta=spec.diffusion.eta,
            shape=(len(strategies), n, n),
            dims=("strategy", "objective", "other"),
        )
        floored = pt.sqrt(sd**2 + spec.diffusion.floor**2)
        chol = floored[:, :, None] * corr_chol

        for k, name in enumerate(strategies):
            mine = strategy_of == name
            mean = pt.as_tensor(state[mine]) @ drift[k].T + intercept[k]
            pm.MvNormal(f"change_{name}", mu=mean, chol=chol[k], observed=change[mine])
    return model
