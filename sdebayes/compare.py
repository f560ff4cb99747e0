r"""Model comparison by PSIS-LOO over held-out sessions or transitions.

The model's likelihood is evaluated from per-strategy sufficient statistics, which has no
pointwise terms, so :func:`pointwise_loglik` recomputes the log density of every transition
from the posterior draws in NumPy, in the objectives' own units:

* Euler-Maruyama: :math:`\Delta x_j \sim \mathcal{N}((A_s x_j + b_s)\Delta t_j,
  \Sigma_s \Delta t_j)`;
* exact: :math:`\Delta x_j \sim \mathcal{N}((F - I) x_j + g, Q)` with the moments over
  :math:`\Delta t_j` from :func:`sdebayes.transitions.exact_moments`.

Summed per session they give the log density of a whole session's changes given its first
version. Leaving one *session* out is the default unit: the transitions of one session are
consecutive states of one time series, so leaving one transition out lets its neighbours,
which share its states, inform the prediction, and measures interpolation within a session
rather than prediction for a new one. ``unit="transition"`` is available for comparison with
studies that score single steps. PSIS-LOO ([1]_, [2]_, through :func:`arviz_stats.loo`)
approximates the leave-one-out predictive densities from one fit per model; its Pareto
:math:`\hat k` diagnostic says where the approximation cannot be trusted, and
:func:`loo_model` warns when any :math:`\hat k` exceeds the threshold.

References
----------
.. [1] Vehtari, A., Gelman, A. and Gabry, J. (2017). Practical Bayesian model evaluation
   using leave-one-out cross-validation and WAIC. Statistics and Computing 27, 1413-1432.
.. [2] Vehtari, A., Simpson, D., Gelman, A., Yao, Y. and Gabry, J. (2024). Pareto smoothed
   importance sampling. Journal of Machine Learning Research 25(72), 1-58.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import xarray as xr

from sdebayes._warnings import warn
from sdebayes.data import transitions
from sdebayes.exceptions import DiagnosticWarning, SdebayesError
from sdebayes.transitions import exact_moments

__all__ = [
    "UNITS",
    "LooWarning",
    "compare_models",
    "loo_model",
    "loo_tree",
    "pointwise_loglik",
]

logger = logging.getLogger(__name__)

Unit = Literal["session", "transition"]
UNITS: tuple[str, ...] = ("session", "transition")
"""What one held-out observation is: a whole session (default) or one transition."""

_CHUNK = 500  # posterior draws per block when evaluating densities, to bound memory


class LooWarning(DiagnosticWarning):
    """PSIS-LOO is unreliable for some held-out units (Pareto k above the threshold)."""


def pointwise_loglik(tree: xr.DataTree, unit: Unit = "session") -> xr.DataArray:
    """Log density of each session's (or transition's) changes under every posterior draw.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit from :func:`sdebayes.fit.fit` (or its file): the posterior ``drift``,
        ``intercept`` and ``diffusion_cov`` in original units, the ``observed_data`` and the
        root attribute ``discretization``.
    unit : {"session", "transition"}, default="session"
        Sum the transitions of each session, or keep them apart.

    Returns
    -------
    xarray.DataArray
        Dimensions ``(chain, draw, session)`` or ``(chain, draw, transition)``, with the
        session (and strategy) of each unit as coordinates. Sessions without a transition
        are left out. Summed over units it equals the posterior ``loglik`` summed over
        strategies.

    Raises
    ------
    ValueError
        If ``unit`` is not one of :data:`UNITS`.
    """
    if unit not in UNITS:
        raise ValueError(f"unit={unit!r} is not one of {', '.join(UNITS)}")
    posterior = tree["posterior"].to_dataset()
    steps = transitions(tree["observed_data"].to_dataset())
    discretization = str(tree.attrs.get("discretization", "euler"))
    strategies = posterior["strategy"].to_numpy()
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]

    def flat(name: str, *dims: str) -> np.ndarray:
        array = posterior[name].transpose("chain", "draw", "strategy", *dims).to_numpy()
        return array.reshape(n_chains * n_draws, *array.shape[2:])

    drift = flat("drift", "objective", "source")
    intercept = flat("intercept", "objective")
    covariance = flat("diffusion_cov", "objective", "other")
    state, change = steps["state"].to_numpy(), steps["change"].to_numpy()
    dt = steps["dt"].to_numpy()
    strategy_of = steps["strategy"].to_numpy()

    values = np.zeros((n_chains * n_draws, steps.sizes["transition"]))
    for k, name in enumerate(strategies):
        rows = np.flatnonzero(strategy_of == name)
        if rows.size == 0:
            continue
        for start in range(0, values.shape[0], _CHUNK):
            block = slice(start, start + _CHUNK)
            values[block, rows] = _transition_logpdf(
                drift[block, k],
                intercept[block, k],
                covariance[block, k],
                state[rows],
                change[rows],
                dt[rows],
                discretization,
            )

    loglik = xr.DataArray(
        values.reshape(n_chains, n_draws, -1),
        dims=("chain", "draw", "transition"),
        coords={
            "chain": posterior["chain"].to_numpy(),
            "draw": posterior["draw"].to_numpy(),
            "session": ("transition", steps["session"].to_numpy()),
            "strategy": ("transition", strategy_of),
        },
        name="transitions",
    )
    if unit == "transition":
        return loglik
    sessions, first = np.unique(steps["session"].to_numpy(), return_index=True)
    order = np.argsort(first)  # keep the sessions in the order of the data
    summed = loglik.groupby("session").sum().sel(session=sessions[order])
    return summed.assign_coords(strategy=("session", strategy_of[first[order]])).rename("sessions")


def _transition_logpdf(
    drift: np.ndarray,
    intercept: np.ndarray,
    covariance: np.ndarray,
    state: np.ndarray,
    change: np.ndarray,
    dt: np.ndarray,
    discretization: str,
) -> np.ndarray:
    """Gaussian log density of each change, shape (draw, transition)."""
    n = state.shape[-1]
    result = np.empty((drift.shape[0], state.shape[0]))
    if discretization == "exact":
        intervals, group = np.unique(dt, return_inverse=True)
        transition, shift, noise = exact_moments(drift, intercept, covariance, intervals)
        for k in range(intervals.size):
            rows = np.flatnonzero(group == k)
            mean = (
                np.einsum("dij,tj->dti", transition[:, k] - np.eye(n), state[rows])
                + shift[:, k, None, :]
            )
            result[:, rows] = _gaussian(change[rows] - mean, noise[:, k], np.ones(rows.size))
        return result
    mean = (np.einsum("dij,tj->dti", drift, state) + intercept[:, None, :]) * dt[:, None]
    return _gaussian(change - mean, covariance, dt)


def _gaussian(residual: np.ndarray, covariance: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Return log N(residual; 0, covariance * scale) for residuals (draw, unit, n)."""
    n = residual.shape[-1]
    chol = np.linalg.cholesky(covariance)
    whitened = np.linalg.solve(chol[:, None], residual[..., None])[..., 0]
    log_det = 2 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    quadratic = (whitened**2).sum(axis=-1) / scale
    return -0.5 * (n * np.log(2 * np.pi) + n * np.log(scale) + log_det[:, None] + quadratic)


def loo_tree(tree: xr.DataTree, unit: Unit = "session") -> xr.DataTree:
    """Return a small tree with the ``posterior`` and a ``log_likelihood`` group for ArviZ.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (see :func:`pointwise_loglik`).
    unit : {"session", "transition"}, default="session"

    Returns
    -------
    xarray.DataTree
        ``posterior`` with the convergence rates (ArviZ estimates the relative efficiency of
        the draws from the posterior group) and ``log_likelihood`` with one variable,
        ``sessions`` or ``transitions``.
    """
    loglik = pointwise_loglik(tree, unit)
    posterior = tree["posterior"].to_dataset()[["convergence_rate"]]
    return xr.DataTree.from_dict(
        {"posterior": posterior, "log_likelihood": loglik.to_dataset()},
        name=str(tree.attrs.get("model_name", "")),
    )


def loo_model(tree: xr.DataTree, unit: Unit = "session", label: str | None = None) -> Any:
    """PSIS-LOO of one fit, warning when Pareto k is high.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (see :func:`pointwise_loglik`).
    unit : {"session", "transition"}, default="session"
    label : str, optional
        Model name used in the warning. Default: the fit's ``model_name``.

    Returns
    -------
    arviz_stats.loo.ELPDData
        Pointwise results included (``elpd_i``, ``pareto_k``).

    Warns
    -----
    LooWarning
        If any Pareto k exceeds ArviZ's threshold ``min(1 - 1 / log10(S), 0.7)`` for ``S``
        draws; the message counts the units and names the worst.
    """
    from arviz_stats import loo

    label = label or str(tree.attrs.get("model_name", "model"))
    with warnings.catch_warnings():
        # arviz_stats warns in general terms; LooWarning below says which units and what next.
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        result = loo(loo_tree(tree, unit), pointwise=True)
    pareto_k = result.pareto_k
    values = pareto_k.to_numpy()
    high = ~(values <= result.good_k)  # a k that could not be estimated (NaN) counts as high
    if high.any():
        worst = int(np.argmax(np.where(np.isfinite(values), values, np.inf)))
        where = f"session {pareto_k['session'].to_numpy()[worst]}"
        if unit == "transition":
            where = f"transition {worst} ({where})"
        warn(
            f"{label}: {int(high.sum())} of {high.size} held-out {unit}s have Pareto k above "
            f"{result.good_k:.2f} (worst {values[worst]:.2f}, {where}); their "
            "PSIS-LOO estimates are unreliable. Refit without them (exact LOO) or use K-fold "
            "cross-validation before trusting small elpd differences",
            LooWarning,
        )
    return result


def compare_models(
    fits: Mapping[str, xr.DataTree], unit: Unit = "session", method: str = "stacking"
) -> dict[str, Any]:
    """Compare fits of several models to the same data by PSIS-LOO.

    Parameters
    ----------
    fits : mapping of str to xarray.DataTree
        Model name to fit; at least two, all fitted to the same data.
    unit : {"session", "transition"}, default="session"
        The held-out unit.
    method : str, default="stacking"
        How :func:`arviz_stats.compare` computes the model weights.

    Returns
    -------
    dict
        ``schema`` (``"sdebayes.compare/1"``), ``unit``, ``n_units``, ``n_draws``, ``models``
        (per model ``elpd``, ``se``, ``p``, ``pareto_k_max``, ``n_high_pareto_k``, ``good_k``)
        and ``ranking``, best first, with ``rank``, ``elpd_diff``, ``dse``, ``weight`` and
        the ``diag_diff`` / ``diag_elpd`` notes of :func:`arviz_stats.compare`.

    Raises
    ------
    SdebayesError
        If fewer than two fits are given or they were fitted to different data.

    Warns
    -----
    LooWarning
        For each model with high Pareto k (see :func:`loo_model`).
    """
    from arviz_stats import compare

    if len(fits) < 2:
        raise SdebayesError(f"compare needs at least two models; got {len(fits)}")
    units = {name: _observed_key(tree) for name, tree in fits.items()}
    if len(set(units.values())) > 1:
        raise SdebayesError(
            f"the fits {', '.join(units)} were fitted to different data; fit every model to "
            "the same table"
        )
    results = {name: loo_model(tree, unit, label=name) for name, tree in fits.items()}
    table = compare(results, method=method, round_to="none")

    models = {}
    for name, result in results.items():
        k = result.pareto_k.to_numpy()
        models[name] = {
            "elpd": _number(result.elpd),
            "se": _number(result.se),
            "p": _number(result.p),
            "pareto_k_max": _number(float(np.max(k))),
            "n_high_pareto_k": int(np.sum(~(k <= result.good_k))),
            "good_k": _number(result.good_k),
        }
    ranking = []
    for name, row in table.iterrows():
        ranking.append(
            {
                "model": str(name),
                "rank": int(row["rank"]),
                "elpd": _number(row["elpd"]),
                "se": _number(row["se"]),
                "elpd_diff": _number(row["elpd_diff"]),
                "dse": _number(row["dse"]),
                "weight": _number(row["weight"]),
                "p": _number(row["p"]),
                "diag_diff": str(row.get("diag_diff", "") or ""),
                "diag_elpd": str(row.get("diag_elpd", "") or ""),
            }
        )
    first = next(iter(results.values()))
    return {
        "schema": "sdebayes.compare/1",
        "unit": unit,
        "n_units": int(first.n_data_points),
        "n_draws": int(first.n_samples),
        "models": models,
        "ranking": ranking,
    }


def _observed_key(tree: xr.DataTree) -> tuple:
    observed = tree["observed_data"]["scores"]
    return observed.shape, float(np.nansum(observed.to_numpy()))


def _number(value: Any) -> float | None:
    value = float(value)
    return float(f"{value:.6g}") if math.isfinite(value) else None
