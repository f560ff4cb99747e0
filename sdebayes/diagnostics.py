"""Sampling diagnostics of a fit and the warnings they raise.

R-hat and the bulk effective sample size (Vehtari et al. 2021) are computed with
``arviz_stats`` over the drift, intercept, diffusion covariance and convergence rates, in the
objectives' own units; divergences come from the sampler's statistics. Crossing a threshold
of :data:`DIAGNOSTIC_THRESHOLDS` issues a :class:`~sdebayes.exceptions.DiagnosticWarning`
that states the measured value, the threshold and a next step.

References
----------
.. [1] Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
   Rank-normalization, folding, and localization: an improved R-hat for assessing
   convergence of MCMC. Bayesian Analysis 16(2), 667-718.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import xarray as xr

from sdebayes._warnings import warn
from sdebayes.exceptions import ConvergenceWarning, SamplingWarning

__all__ = ["DIAGNOSED_VARIABLES", "DIAGNOSTIC_THRESHOLDS", "diagnose", "diagnostic_problems"]

logger = logging.getLogger(__name__)

DIAGNOSTIC_THRESHOLDS = {"max_rhat": 1.01, "min_ess_bulk": 400, "divergences": 0}
"""Limits beyond which :func:`diagnose` warns (R-hat and ESS as recommended in [1]_)."""

DIAGNOSED_VARIABLES = ("drift", "intercept", "diffusion_cov", "convergence_rate")
"""Posterior variables whose R-hat and ESS enter the diagnostics."""


def diagnose(
    tree: xr.DataTree,
    sampler: str | None = None,
    seconds: float | None = None,
    warn_user: bool = True,
) -> dict[str, Any]:
    """Convergence diagnostics of a fit, with warnings when they cross the thresholds.

    R-hat and bulk ESS (Vehtari et al. 2021) are computed over the drift, intercept,
    diffusion covariance and convergence rates, in original units.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit returned by :func:`fit`.
    sampler : str, optional
        Name recorded in the result.
    seconds : float, optional
        Sampling wall time recorded in the result.
    warn_user : bool, default=True
        Issue :class:`ConvergenceWarning` / :class:`SamplingWarning` when a threshold fails.

    Returns
    -------
    dict
        ``sampler``, ``chains``, ``draws``, ``max_rhat``, ``min_ess_bulk``, ``divergences``,
        ``seconds`` and ``passed`` (all thresholds met).
    """
    from arviz_stats import ess, rhat

    posterior = tree["posterior"].to_dataset()[list(DIAGNOSED_VARIABLES)]
    ess_bulk = ess(posterior, method="bulk")
    if posterior.sizes["chain"] < 2:  # R-hat compares chains; with one it is undefined
        max_rhat = float("nan")
    else:
        rhats = rhat(posterior)
        max_rhat = max(float(np.nanmax(rhats[name].to_numpy())) for name in rhats.data_vars)
    min_ess = min(float(np.nanmin(ess_bulk[name].to_numpy())) for name in ess_bulk.data_vars)
    divergences = int(tree["sample_stats"]["diverging"].sum())

    result = {
        "sampler": sampler or tree.attrs.get("sampler", ""),
        "chains": int(posterior.sizes["chain"]),
        "draws": int(posterior.sizes["draw"]),
        "max_rhat": round(max_rhat, 4),
        "min_ess_bulk": round(min_ess, 1),
        "divergences": divergences,
        "seconds": None if seconds is None else round(seconds, 2),
    }
    problems = diagnostic_problems(result)
    result["passed"] = not problems
    if warn_user:
        for message, category in problems:
            warn(message, category)
    return result


def diagnostic_problems(result: dict[str, Any]) -> list[tuple[str, type[Warning]]]:
    """List the thresholds a diagnostics result fails, as (message, warning category) pairs.

    Parameters
    ----------
    result : dict
        As returned by :func:`diagnose`.

    Returns
    -------
    list of tuple
        Empty when every threshold of :data:`DIAGNOSTIC_THRESHOLDS` is met.
    """
    limits = DIAGNOSTIC_THRESHOLDS
    problems: list[tuple[str, type[Warning]]] = []
    if result.get("chains", 2) < 2:
        problems.append(
            (
                f"R-hat needs at least 2 chains, got {result['chains']}: convergence cannot be "
                "checked; run --chains 4",
                ConvergenceWarning,
            )
        )
    elif not result["max_rhat"] <= limits["max_rhat"]:
        problems.append(
            (
                f"max R-hat is {result['max_rhat']:.3f} > {limits['max_rhat']}: the chains "
                "disagree; run longer (--tune 2000 --draws 2000) and check the trace plots",
                ConvergenceWarning,
            )
        )
    if not result["min_ess_bulk"] >= limits["min_ess_bulk"]:
        problems.append(
            (
                f"min bulk ESS is {result['min_ess_bulk']:.0f} < {limits['min_ess_bulk']}: "
                "intervals are imprecise; draw more (--draws) or run more chains",
                ConvergenceWarning,
            )
        )
    if result["divergences"] > limits["divergences"]:
        problems.append(
            (
                f"{result['divergences']} divergent transitions: the posterior may be biased; "
                "try the non-hierarchical model or check the data for outliers",
                SamplingWarning,
            )
        )
    return problems
