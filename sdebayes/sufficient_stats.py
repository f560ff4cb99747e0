r"""Per-strategy sufficient statistics of the Euler-Maruyama likelihood.

Under Euler-Maruyama the change over one transition is Gaussian,

.. math::

    \Delta x_j \sim \mathcal{N}\big((A_s x_j + b_s)\,\Delta t_j,\; \Sigma_s\,\Delta t_j\big).

The model works on standardised objectives, :math:`x' = (x - m) / d` with one location and
scale per objective over the whole table, and centres the states per strategy,
:math:`x^c = x' - \bar x'_s`. Dividing a transition by :math:`\sqrt{\Delta t}` turns it into
a multivariate regression :math:`y_j \sim \mathcal{N}(B^\top z_j, \Sigma)` with
:math:`y_j = \Delta x'_j / \sqrt{\Delta t_j}` and :math:`z_j = \sqrt{\Delta t_j}\,[x^c_j, 1]`.
Its log density depends on the data only through :math:`S_{zz} = \sum z z^\top`,
:math:`S_{zy} = \sum z y^\top`, :math:`S_{yy} = \sum y y^\top` and the count :math:`N`, so the
cost of one gradient does not depend on the number of sessions. The statistics are sums and
can be accumulated in chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import xarray as xr

from sdebayes.exceptions import DataError

__all__ = ["INTERCEPT", "standardization", "statistics_dataset", "sufficient_statistics"]

logger = logging.getLogger(__name__)

INTERCEPT = "intercept"
"""Name of the constant regressor that sits beside the objectives in ``z``."""

_MANY_INTERVALS = 200


def standardization(trajectories: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Return the per-objective location and scale used to standardise the scores.

    Parameters
    ----------
    trajectories : xarray.Dataset
        As returned by :func:`sdebayes.data.read_trajectories`.

    Returns
    -------
    location, scale : numpy.ndarray
        Mean and standard deviation of every observed score, per objective. An objective that
        never varies gets scale 1 so that the standardisation stays defined.
    """
    scores = trajectories["scores"].to_numpy()
    flat = scores.reshape(-1, scores.shape[-1])
    flat = flat[np.isfinite(flat).all(axis=1)]

    location = flat.mean(axis=0)
    scale = flat.std(axis=0)
    constant = scale <= 1e-12 * np.maximum(1.0, np.abs(location))
    if constant.any():
        names = trajectories["objective"].to_numpy()[constant]
        logger.warning("objective(s) %s never vary; their scale is set to 1", ", ".join(names))
        scale = np.where(constant, 1.0, scale)
    return location, scale


def sufficient_statistics(
    steps: xr.Dataset,
    location: np.ndarray,
    scale: np.ndarray,
    strategies: Sequence[str] | None = None,
    centre_states: bool = True,
) -> xr.Dataset:
    """Reduce transitions to the sufficient statistics of each strategy.

    Parameters
    ----------
    steps : xarray.Dataset
        Transitions as returned by :func:`sdebayes.data.transitions`.
    location, scale : numpy.ndarray
        Standardisation of each objective, from :func:`standardization`.
    strategies : sequence of str, optional
        Strategies to include, in this order. Default: all strategies of ``steps`` in order
        of appearance.
    centre_states : bool, default=True
        Centre the states at each strategy's mean, so that the model's ``c_s`` is the drift
        at that mean; ``False`` keeps them as they are (``c_s`` is then the intercept).

    Returns
    -------
    xarray.Dataset
        Standardised-scale statistics per strategy: ``n_transitions``, ``centre`` (mean
        standardised state), ``s_zz``, ``s_zy``, ``s_yy``, ``y_sum``, ``log_dt_sum`` (for the
        Jacobian back to the raw changes) and the covariance of the states ``state_cov``;
        ``change_cov``, the covariance of the observed changes in the objectives' own units;
        ``change_sum``, the sum of the standardised changes; for the exact transition, the
        distinct time steps ``interval_dt`` and per strategy and time step the statistics
        ``interval_n``, ``interval_s_zz``, ``interval_s_zy``, ``interval_s_yy`` of the
        unscaled regression of changes on ``[x^c, 1]``; and ``location`` and ``scale`` of
        the standardisation. ``attrs["unit_steps"]`` is 1 when every time step is 1.

    Raises
    ------
    DataError
        If a requested strategy has no transitions.
    """
    strategy_of = steps["strategy"].to_numpy()
    if strategies is None:
        strategies = list(dict.fromkeys(strategy_of))
    _check_transitions(steps, strategies)

    objectives = steps["objective"].to_numpy()
    intervals = np.unique(steps["dt"].to_numpy())
    if intervals.size > _MANY_INTERVALS:
        logger.warning(
            "%d distinct time steps: the exact transition computes one matrix exponential "
            "per strategy and distinct step, so it will be slow; round the time column if "
            "the steps need not be that precise",
            intervals.size,
        )
    per_strategy = [
        _strategy_statistics(
            steps.isel(transition=strategy_of == name), location, scale, intervals, centre_states
        )
        for name in strategies
    ]
    return statistics_dataset(per_strategy, strategies, objectives, intervals, location, scale)


def statistics_dataset(
    per_strategy: Sequence[dict],
    strategies: Sequence[str],
    objectives: Sequence[str] | np.ndarray,
    intervals: np.ndarray,
    location: np.ndarray,
    scale: np.ndarray,
) -> xr.Dataset:
    """Assemble the Dataset of :func:`sufficient_statistics` from per-strategy arrays.

    Parameters
    ----------
    per_strategy : sequence of dict
        One dict per strategy with the keys ``n``, ``centre``, ``s_zz``, ``s_zy``, ``s_yy``,
        ``y_sum``, ``log_dt_sum``, ``state_cov``, ``change_cov``, ``change_sum``,
        ``interval_n``, ``interval_s_zz``, ``interval_s_zy`` and ``interval_s_yy``, as
        described in :func:`sufficient_statistics`.
    strategies : sequence of str
    objectives : sequence of str or numpy.ndarray
    intervals : numpy.ndarray
        The distinct time steps, sorted.
    location, scale : numpy.ndarray
        Standardisation of each objective.

    Returns
    -------
    xarray.Dataset
        As returned by :func:`sufficient_statistics`. :mod:`sdebayes.distributed` builds it
        from moment sums computed on a cluster.
    """
    objective_names = np.asarray(objectives, dtype=str)
    regressors = np.append(objective_names, INTERCEPT)
    stacked = {key: np.stack([item[key] for item in per_strategy]) for key in per_strategy[0]}

    return xr.Dataset(
        {
            "n_transitions": ("strategy", stacked["n"]),
            "centre": (("strategy", "objective"), stacked["centre"]),
            "s_zz": (("strategy", "regressor", "regressor_other"), stacked["s_zz"]),
            "s_zy": (("strategy", "regressor", "objective"), stacked["s_zy"]),
            "s_yy": (("strategy", "objective", "other"), stacked["s_yy"]),
            "y_sum": (("strategy", "objective"), stacked["y_sum"]),
            "log_dt_sum": ("strategy", stacked["log_dt_sum"]),
            "state_cov": (("strategy", "objective", "other"), stacked["state_cov"]),
            "change_cov": (("strategy", "objective", "other"), stacked["change_cov"]),
            "interval_dt": ("interval", intervals),
            "interval_n": (("strategy", "interval"), stacked["interval_n"]),
            "interval_s_zz": (
                ("strategy", "interval", "regressor", "regressor_other"),
                stacked["interval_s_zz"],
            ),
            "interval_s_zy": (
                ("strategy", "interval", "regressor", "objective"),
                stacked["interval_s_zy"],
            ),
            "interval_s_yy": (
                ("strategy", "interval", "objective", "other"),
                stacked["interval_s_yy"],
            ),
            "change_sum": (("strategy", "objective"), stacked["change_sum"]),
            "location": ("objective", np.asarray(location, dtype=float)),
            "scale": ("objective", np.asarray(scale, dtype=float)),
        },
        attrs={"unit_steps": int(np.all(intervals == 1.0))},
        coords={
            "strategy": np.asarray(strategies, dtype=str),
            "objective": objective_names,
            "other": objective_names,
            "regressor": regressors,
            "regressor_other": regressors,
        },
    )


def _check_transitions(steps: xr.Dataset, strategies: Sequence[str]) -> None:
    counts = {name: 0 for name in strategies}
    for name, count in zip(
        *np.unique(steps["strategy"].to_numpy(), return_counts=True), strict=True
    ):
        if name in counts:
            counts[name] = int(count)

    empty = [name for name, count in counts.items() if count == 0]
    if empty:
        source = steps.attrs.get("source", "the data")
        raise DataError(
            f"{source}: strategy(ies) {', '.join(repr(str(name)) for name in empty)} have no "
            "transitions (every session has a single version); remove those rows or add "
            "sessions with two or more versions"
        )


def _strategy_statistics(
    steps: xr.Dataset,
    location: np.ndarray,
    scale: np.ndarray,
    intervals: np.ndarray,
    centre_states: bool = True,
) -> dict:
    state = (steps["state"].to_numpy() - location) / scale
    change = steps["change"].to_numpy() / scale
    dt = steps["dt"].to_numpy()[:, None]

    centre = state.mean(axis=0) if centre_states else np.zeros(state.shape[1])
    root_dt = np.sqrt(dt)
    regressors = np.column_stack([(state - centre) * root_dt, root_dt])
    response = change / root_dt

    raw_change = steps["change"].to_numpy()
    return {
        "n": state.shape[0],
        "centre": centre,
        "s_zz": regressors.T @ regressors,
        "s_zy": regressors.T @ response,
        "s_yy": response.T @ response,
        "y_sum": response.sum(axis=0),
        "log_dt_sum": np.log(dt).sum(),
        "state_cov": _covariance(state),
        "change_cov": _covariance(raw_change),
        "change_sum": change.sum(axis=0),
        **_interval_statistics(state - centre, change, dt[:, 0], intervals),
    }


def _interval_statistics(
    centred: np.ndarray, change: np.ndarray, dt: np.ndarray, intervals: np.ndarray
) -> dict:
    """Statistics of the exact transition, one set per distinct time step.

    The exact transition over ``dt`` is a regression of the change on ``[x^c, 1]`` with
    coefficients and covariance that depend on ``dt``, so transitions are grouped by their
    time step and no ``sqrt(dt)`` scaling is applied.
    """
    regressors = np.column_stack([centred, np.ones(len(centred))])
    group = np.searchsorted(intervals, dt)
    n_intervals, n_regressors = len(intervals), regressors.shape[1]

    counts = np.bincount(group, minlength=n_intervals).astype(float)
    s_zz = np.zeros((n_intervals, n_regressors, n_regressors))
    s_zy = np.zeros((n_intervals, n_regressors, change.shape[1]))
    s_yy = np.zeros((n_intervals, change.shape[1], change.shape[1]))
    np.add.at(s_zz, group, regressors[:, :, None] * regressors[:, None, :])
    np.add.at(s_zy, group, regressors[:, :, None] * change[:, None, :])
    np.add.at(s_yy, group, change[:, :, None] * change[:, None, :])
    return {
        "interval_n": counts,
        "interval_s_zz": s_zz,
        "interval_s_zy": s_zy,
        "interval_s_yy": s_yy,
    }


def _covariance(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean(axis=0)
    return centred.T @ centred / max(len(values), 1)
