"""Model checks that do not need a fit: prior predictive simulation.

A prior is only weakly informative if data simulated from it look like data that could
exist. :func:`prior_predictive_check` draws parameters from a model's priors (through PyMC,
so it checks the priors the model really uses), simulates sessions by Euler-Maruyama on the
standardised scale, and reports how often they explode. The bundled models' priors were
chosen with it; ``docs/model.md`` gives the figures.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import xarray as xr

from sdebayes._logging import quieted
from sdebayes.dynamics import convergence_rate, sorted_eigenvalues
from sdebayes.model import build_model
from sdebayes.specs import ModelSpec

__all__ = ["prior_predictive_check"]

logger = logging.getLogger(__name__)

_PARAMETERS = ["drift_standardised", "centre_drift", "diffusion_chol"]


def prior_predictive_check(
    statistics: xr.Dataset,
    spec: ModelSpec,
    steps: int = 10,
    draws: int = 2000,
    random_seed: int | None = None,
) -> xr.Dataset:
    """Simulate sessions from prior draws and measure how far they wander.

    Sessions start from independent standard normal states (the spread of the standardised
    data) and follow the Euler-Maruyama transition with dt = 1 for ``steps`` rounds.

    Parameters
    ----------
    statistics : xarray.Dataset
        Sufficient statistics (only their strategies and objectives are used).
    spec : ModelSpec
        The model whose priors are checked.
    steps : int, default=10
        Rounds per simulated session.
    draws : int, default=2000
        Prior draws.
    random_seed : int, optional

    Returns
    -------
    xarray.Dataset
        Per draw and strategy: ``max_abs_score``, the largest absolute standardised score
        reached, and the prior ``convergence_rate``. ``attrs`` hold the share of draws beyond
        5 and 10 standard deviations and the share with a negative rate (unstable drift).
    """
    import pymc as pm

    rng = np.random.default_rng(random_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyMC notes that the likelihood potential is skipped
        with build_model(statistics, spec), quieted("pymc"):
            prior = pm.sample_prior_predictive(draws=draws, var_names=_PARAMETERS, random_seed=rng)[
                "prior"
            ]

    drift, centre_drift, chol = (
        prior[name].transpose("chain", "draw", "strategy", ...).to_numpy()[0]
        for name in _PARAMETERS
    )
    state = rng.standard_normal(centre_drift.shape)
    largest = np.abs(state).max(axis=-1)
    for _ in range(steps):
        noise = np.einsum("...ij,...j->...i", chol, rng.standard_normal(state.shape))
        state = state + np.einsum("...ij,...j->...i", drift, state) + centre_drift + noise
        largest = np.maximum(largest, np.abs(state).max(axis=-1))

    rate = convergence_rate(sorted_eigenvalues(drift)[0])
    result = xr.Dataset(
        {
            "max_abs_score": (("draw", "strategy"), largest),
            "convergence_rate": (("draw", "strategy"), rate),
        },
        coords={"strategy": statistics["strategy"].to_numpy()},
    )
    result.attrs.update(
        share_beyond_5_sd=float(np.mean(largest > 5)),
        share_beyond_10_sd=float(np.mean(largest > 10)),
        share_unstable=float(np.mean(rate < 0)),
        steps=steps,
        model=spec.name,
    )
    logger.debug("prior predictive check of %s: %s", spec.name, result.attrs)
    return result
