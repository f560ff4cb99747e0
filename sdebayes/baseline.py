r"""The published least-squares method, with intervals from a bootstrap over sessions.

The study sdebayes follows [1]_ fits each strategy's drift by ordinary least squares of the
one-step changes on the current scores and a constant,

.. math::

    \Delta x_j = A_s x_j + b_s + \varepsilon_j ,

pooling the transitions of every session of the strategy (a session's last version is never
joined to the next session's first). :func:`least_squares` reproduces that fit and the same
derived quantities as the Bayesian fit (eigenvalues, convergence rate, discrete stability,
dynamic mode, equilibrium, one-step :math:`R^2`), computed by the functions of
:mod:`sdebayes.dynamics`, plus the study's interference matrix: the correlation matrix of the
observed one-step changes with its diagonal set to 0.

:func:`bootstrap` resamples whole sessions with replacement, separately within each strategy,
and refits. Because least squares depends on the data only through sums, each session is
reduced once to its own sums (:math:`S_{zz}`, :math:`S_{zy}`, :math:`S_{yy}`, ...); a resample
is a vector of multinomial counts, and its sums are the count-weighted sums of the sessions'
sums. A thousand resamples then cost a few matrix products. :func:`summarize_baseline`
writes the result in the layout of ``sdebayes sample --json`` (``sdebayes.summary/1``), with
the least-squares estimate as ``mean`` and a bootstrap percentile interval, so that the two
methods can be compared interval to interval. ``docs/baseline.md`` gives the definitions.

:data:`PUBLISHED` holds the numbers of the study's tables, in one place.

References
----------
.. [1] Shukla, S. and Joshi, H. (2025). A Stochastic Differential Equation Framework for
   Multi-Objective LLM Interactions: Dynamical Systems Analysis with Code Generation
   Applications. arXiv:2510.10739.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from sdebayes import dynamics
from sdebayes._warnings import warn
from sdebayes.data import objective_bounds, transitions
from sdebayes.exceptions import DataError, DiagnosticWarning
from sdebayes.specs import DynamicsSettings
from sdebayes.summary import (
    INTERVAL_QUANTITIES,
    SCHEMA,
    check_strategies,
    json_number,
    resolve_ci_prob,
    summarize_draws,
)

__all__ = [
    "FEW_BOOTSTRAP_SESSIONS",
    "PUBLISHED",
    "bootstrap",
    "least_squares",
    "summarize_baseline",
]

logger = logging.getLogger(__name__)

PUBLISHED: dict[str, Any] = {
    "reference": (
        "Shukla, S. and Joshi, H. (2025). A Stochastic Differential Equation Framework for "
        "Multi-Objective LLM Interactions: Dynamical Systems Analysis with Code Generation "
        "Applications. arXiv:2510.10739."
    ),
    "objectives": ("security", "efficiency", "functionality"),
    "strategies": {
        "EF": {
            "name": "efficiency-focused",
            "convergence_rate": 0.33,
            "mode": "real negative eigenvalues",
            "sdebayes_mode": "exponential",
            "equilibrium": (5.25, 4.65, 7.26),
            "r2": 0.58,
        },
        "SF": {
            "name": "safety-focused",
            "convergence_rate": 1.08,
            "mode": "complex eigenvalues (damped oscillation)",
            "sdebayes_mode": "oscillatory",
            "equilibrium": (5.75, 3.90, 8.20),
            "r2": 0.72,
        },
        "FF": {
            "name": "functionality-focused",
            "convergence_rate": 1.29,
            "mode": "near-zero eigenvalue (boundary)",
            "sdebayes_mode": "boundary",
            "equilibrium": (0.00, 2.10, 8.75),
            "r2": 0.50,
        },
        "AI": {
            "name": "adaptive integration",
            "convergence_rate": 0.15,
            "mode": "balanced",
            "sdebayes_mode": "exponential",
            "equilibrium": (4.00, 4.20, 8.20),
            "r2": 0.74,
        },
    },
    "interference": {"functionality": {"efficiency": -0.17, "security": -0.09}},
    "notes": (
        "Rates, modes, equilibria and R^2 are per strategy; the two interference values are "
        "study-wide and approximate ('about -0.17', 'about -0.09'). FF's published rate 1.29 "
        "contradicts its near-zero eigenvalue under the slowest-mode definition "
        "-max Re(eig A); sdebayes.simulate.paper_scenario keeps the near-zero eigenvalue and "
        "reads 1.29 as FF's fastest mode. 'Balanced' (AI) is read as three close, slow real "
        "eigenvalues, which sdebayes classifies as 'exponential'."
    ),
}
"""Published values of the study [1]_, as calibrated in :func:`sdebayes.simulate.paper_scenario`.

``strategies.NAME`` holds the convergence rate, the mode as the study words it and the
sdebayes mode it corresponds to, the equilibrium (security, efficiency, functionality) and
the one-step :math:`R^2`; ``interference`` the two study-wide interference values. Treat it as
read-only.
"""

FEW_BOOTSTRAP_SESSIONS = 10
"""Below this many sessions with transitions, :func:`bootstrap` warns that its intervals
are unreliable."""

_SAMPLE_DIMS = ("chain", "draw")
_SINGULAR_CONDITION = 1e12


@dataclass(frozen=True)
class _SessionSums:
    """Least-squares sums of each session of one strategy (leading dimension: session).

    States enter centred and scaled, ``(x - centre) / scale``, and changes centred at
    ``change_centre``: fixed shifts that leave the fit unchanged but keep the normal equations
    well conditioned whatever the objectives' units.
    """

    sessions: np.ndarray
    count: np.ndarray
    s_zz: np.ndarray
    s_zy: np.ndarray
    s_yy: np.ndarray
    y_sum: np.ndarray
    change_sum: np.ndarray
    change_outer: np.ndarray
    centre: np.ndarray
    scale: np.ndarray
    change_centre: np.ndarray

    def weighted(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Weight the sessions' sums by ``weights`` of shape (..., session) and add them up."""
        names = ("count", "s_zz", "s_zy", "s_yy", "y_sum", "change_sum", "change_outer")
        return {
            name: np.tensordot(weights, getattr(self, name), axes=([-1], [0])) for name in names
        }


def least_squares(
    trajectories: xr.Dataset,
    strategies: Sequence[str] | None = None,
    *,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    settings: DynamicsSettings | None = None,
) -> xr.Dataset:
    r"""Fit each strategy's drift by ordinary least squares, as the published study does.

    Parameters
    ----------
    trajectories : xarray.Dataset
        As returned by :func:`sdebayes.data.read_trajectories`.
    strategies : sequence of str, optional
        Strategies to fit, in this order. Default: every strategy, in data order. The Pareto
        flag compares the strategies fitted here.
    bounds : tuple of numpy.ndarray, optional
        Lowest and highest possible score per objective, for the mode classification.
        Default: the observed range of each objective, as :func:`sdebayes.fit.fit` uses.
    settings : DynamicsSettings, optional
        Mode thresholds. Default: those of the bundled models.

    Returns
    -------
    xarray.Dataset
        Along ``strategy``: ``drift`` (objective, source), ``intercept``, ``diffusion_cov``
        (residual covariance, divided by :math:`N - n - 1`), ``diffusion_correlation``,
        ``eigenvalues_real`` and ``eigenvalues_imag`` (slowest first), ``convergence_rate``,
        ``discrete_stability`` (Euler, :math:`\Delta t = 1`), ``mode`` (index into
        :data:`sdebayes.dynamics.MODES`), ``equilibrium``, ``equilibrium_condition``,
        ``interference`` (observed), ``r2``, ``pareto_optimal``, ``n_transitions`` and
        ``n_sessions`` (sessions with at least one transition).

    Raises
    ------
    DataError
        If a requested strategy is not in the data, or has too few transitions (or too little
        variation in its states) for the regression to be determined.

    See Also
    --------
    bootstrap : Intervals for every quantity by resampling sessions.
    sdebayes.fit.fit : The Bayesian fit of the same model.

    Notes
    -----
    With :math:`z_j = \sqrt{\Delta t_j}\,[x_j, 1]` and :math:`y_j = \Delta x_j/\sqrt{\Delta t_j}`
    the estimate is :math:`\hat B = S_{zz}^{-1} S_{zy}`, :math:`\hat B^\top = [\hat A, \hat b]`.
    With unit time steps (the study's setting, and the default when a table has no ``time``
    column and no skipped steps) this is exactly ordinary least squares of :math:`\Delta x` on
    :math:`[x, 1]`, equation by equation; with uneven steps it is the weighted least squares
    that the Euler-Maruyama likelihood implies. The one-step :math:`R^2` is pooled over
    objectives in their own units,

    .. math::

        R^2 = 1 - \frac{\operatorname{tr} R(\hat B)}
                       {\operatorname{tr}(S_{yy} - N \bar y \bar y^\top)},

    and the interference is :math:`\operatorname{corr}(\Delta x)` with a zero diagonal.

    Examples
    --------
    >>> from sdebayes.data import read_trajectories
    >>> from sdebayes.datasets import paper_sessions_path
    >>> estimate = least_squares(read_trajectories(paper_sessions_path()))
    >>> round(float(estimate["convergence_rate"].sel(strategy="EF")), 2)
    0.32
    """
    names, sums, bounds = _prepare(trajectories, strategies, bounds)
    estimates = [_fit(item.weighted(np.ones(len(item.sessions))), item) for item in sums]
    for name, estimate in zip(names, estimates, strict=True):
        if not np.all(np.isfinite(estimate["coefficients"])):
            raise DataError(
                f"{trajectories.attrs.get('source', 'the data')}: strategy {name!r}: the "
                f"states of its {int(estimate['count'])} transitions do not vary enough to "
                f"determine the drift by least squares{_constant_states(trajectories, name)}"
            )

    stacked = {key: np.stack([item[key] for item in estimates]) for key in estimates[0]}
    dataset = _dataset(stacked, names, trajectories, bounds, settings, sample_dims=())
    dataset["n_sessions"] = ("strategy", np.array([len(item.sessions) for item in sums]))
    dataset.attrs.update(_data_attrs(trajectories))
    return dataset


def bootstrap(
    trajectories: xr.Dataset,
    n_resamples: int = 1000,
    random_seed: int | np.random.Generator | None = None,
    *,
    strategies: Sequence[str] | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    settings: DynamicsSettings | None = None,
) -> xr.Dataset:
    r"""Refit least squares on resamples of whole sessions, separately within each strategy.

    Parameters
    ----------
    trajectories : xarray.Dataset
        As returned by :func:`sdebayes.data.read_trajectories`.
    n_resamples : int, default=1000
        Number of bootstrap resamples.
    random_seed : int or numpy.random.Generator, optional
        Seed of the resampling; the same seed and data give the same resamples.
    strategies : sequence of str, optional
        Strategies to fit, in this order. Default: every strategy, in data order.
    bounds : tuple of numpy.ndarray, optional
        Score range for the mode classification; see :func:`least_squares`.
    settings : DynamicsSettings, optional
        Mode thresholds.

    Returns
    -------
    xarray.Dataset
        The variables of :func:`least_squares` (except ``n_sessions``) with the leading
        dimensions ``chain`` (size 1) and ``draw`` (one per resample), the layout of a
        posterior, so that the same code summarises both. Resamples in which some strategy's
        regression is undetermined are dropped; ``attrs["dropped_resamples"]`` counts them.

    Raises
    ------
    ValueError
        If ``n_resamples`` is not a positive integer.
    DataError
        As :func:`least_squares`, and if a strategy has fewer than two sessions with
        transitions (resampling one session cannot show how estimates vary between sessions).

    Warns
    -----
    DiagnosticWarning
        If some resamples are undetermined and dropped.

    Notes
    -----
    Sessions, not transitions, are resampled because the transitions of one session are
    dependent (each starts where the previous one ended). Sessions of a strategy are drawn
    with replacement, as many as the strategy has sessions with transitions; a resample is
    the vector of multinomial counts :math:`w_k` and its sums are
    :math:`S = \sum_k w_k S^{(k)}` over the per-session sums :math:`S^{(k)}`, which is exact.
    The resulting percentile intervals are the usual nonparametric bootstrap intervals; with
    few sessions they tend to be too narrow (see the replication notebook).

    Examples
    --------
    >>> from sdebayes.data import read_trajectories
    >>> from sdebayes.datasets import paper_sessions_path
    >>> replicates = bootstrap(read_trajectories(paper_sessions_path()), 200, random_seed=1)
    >>> replicates.sizes["draw"]
    200
    """
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, int | np.integer)
        or n_resamples < 1
    ):
        raise ValueError(
            f"n_resamples={n_resamples!r} must be a positive integer; pass e.g. n_resamples=1000"
        )
    names, sums, bounds = _prepare(trajectories, strategies, bounds)
    few = [name for name, item in zip(names, sums, strict=True) if len(item.sessions) < 2]
    if few:
        raise DataError(
            f"strategy(ies) {', '.join(map(repr, few))} have fewer than two sessions with "
            "transitions; a bootstrap over sessions needs at least two (better ten or more)"
        )

    thin = {
        name: len(item.sessions)
        for name, item in zip(names, sums, strict=True)
        if len(item.sessions) < FEW_BOOTSTRAP_SESSIONS
    }
    if thin:
        listed = ", ".join(f"{name!r} ({count})" for name, count in thin.items())
        warn(
            f"strategy(ies) {listed} have fewer than {FEW_BOOTSTRAP_SESSIONS} sessions with "
            "transitions; a bootstrap over so few sessions has few distinct resamples and "
            "understates the uncertainty (even at 10 sessions, 90% intervals covered 83% of "
            "convergence rates in notebooks/paper_replication.ipynb, the posterior's 90%); "
            "prefer the intervals of sdebayes sample",
            DiagnosticWarning,
        )

    rng = np.random.default_rng(random_seed)
    estimates = []
    for item in sums:
        n_sessions = len(item.sessions)
        counts = rng.multinomial(n_sessions, np.full(n_sessions, 1.0 / n_sessions), n_resamples)
        estimates.append(_fit(item.weighted(counts.astype(float)), item))

    stacked = {key: np.stack([item[key] for item in estimates], axis=1) for key in estimates[0]}
    defined = np.all(np.isfinite(stacked["coefficients"]), axis=(1, 2, 3))
    dropped = int(n_resamples - defined.sum())
    if dropped == n_resamples:
        raise DataError(
            "the least-squares regression is undetermined in every bootstrap resample; the "
            "strategies need more sessions with varying states"
        )
    if dropped:
        warn(
            f"{dropped} of {n_resamples} bootstrap resamples leave the regression undetermined "
            "and are dropped, which narrows the intervals; add sessions to the strategies with "
            "little variation",
            DiagnosticWarning,
        )
    stacked = {key: value[defined][None] for key, value in stacked.items()}

    dataset = _dataset(stacked, names, trajectories, bounds, settings, sample_dims=_SAMPLE_DIMS)
    dataset.attrs.update(_data_attrs(trajectories))
    dataset.attrs.update(
        n_resamples=int(n_resamples),
        dropped_resamples=dropped,
        random_seed=-1 if not isinstance(random_seed, int | np.integer) else int(random_seed),
        resampling="sessions with replacement, separately within each strategy",
    )
    return dataset


def summarize_baseline(
    estimate: xr.Dataset,
    replicates: xr.Dataset,
    strategies: Sequence[str] | None = None,
    ci_prob: float | None = None,
) -> dict[str, Any]:
    """Summarise the least-squares fit in the layout of ``sdebayes sample --json``.

    Parameters
    ----------
    estimate : xarray.Dataset
        From :func:`least_squares`.
    replicates : xarray.Dataset
        From :func:`bootstrap` on the same data and strategies.
    strategies : sequence of str, optional
        Strategies to report. Default: all.
    ci_prob : float, optional
        Probability of the percentile intervals. Default: ArviZ's ``stats.ci_prob`` (0.89),
        as for the posterior.

    Returns
    -------
    dict
        Schema ``sdebayes.summary/1``: ``data``, ``model``, ``ci_prob``, ``bootstrap`` and
        ``strategies``. Every entry is ``{"mean", "median", "lower", "upper"}`` where
        ``mean`` is the least-squares estimate and ``median``, ``lower`` and ``upper`` come
        from the bootstrap. ``mode`` and ``pareto_optimal`` are the estimate's,
        ``mode_probabilities`` and ``pareto_probability`` the bootstrap shares.

    Raises
    ------
    DataError
        If a requested strategy was not fitted.
    ValueError
        If ``estimate`` and ``replicates`` do not hold the same strategies and objectives.

    Examples
    --------
    >>> from sdebayes.data import read_trajectories
    >>> from sdebayes.datasets import paper_sessions_path
    >>> trajectories = read_trajectories(paper_sessions_path())
    >>> summary = summarize_baseline(
    ...     least_squares(trajectories), bootstrap(trajectories, 200, random_seed=1)
    ... )
    >>> sorted(summary["strategies"]["EF"]["convergence_rate"])
    ['lower', 'mean', 'median', 'upper']
    """
    ci_prob = resolve_ci_prob(ci_prob)
    for coordinate in ("strategy", "objective"):
        fitted = list(map(str, estimate[coordinate].to_numpy()))
        resampled = list(map(str, replicates[coordinate].to_numpy()))
        if fitted != resampled:
            raise ValueError(
                f"estimate has {coordinate} {fitted!r} but replicates have {resampled!r}; "
                "pass the results of least_squares and bootstrap on the same data"
            )
    available = list(map(str, estimate["strategy"].to_numpy()))
    strategies = check_strategies(available, strategies)

    return {
        "schema": SCHEMA,
        "data": {
            "source": estimate.attrs.get("source", ""),
            "sessions": int(estimate.attrs.get("sessions", 0)),
            "sessions_without_transitions": int(
                estimate.attrs.get("sessions_without_transitions", 0)
            ),
            "transitions": int(estimate["n_transitions"].sum()),
            "strategies": available,
            "objectives": list(map(str, estimate["objective"].to_numpy())),
        },
        "model": {"name": "least_squares", "discretization": "euler"},
        "ci_prob": ci_prob,
        "estimate": "mean: least-squares estimate; median, lower, upper: bootstrap percentiles",
        "bootstrap": {
            "resamples": int(replicates.attrs.get("n_resamples", replicates.sizes["draw"])),
            "used_resamples": int(replicates.sizes["chain"] * replicates.sizes["draw"]),
            "seed": replicates.attrs.get("random_seed", -1),
            "resampling": replicates.attrs.get("resampling", ""),
        },
        "strategies": {
            name: _baseline_block(
                estimate.sel(strategy=name), replicates.sel(strategy=name), ci_prob
            )
            for name in strategies
        },
    }


def _baseline_block(point: xr.Dataset, draws: xr.Dataset, ci_prob: float) -> dict[str, Any]:
    block = summarize_draws(draws, ci_prob)
    for name in INTERVAL_QUANTITIES:
        block[name] = _with_point(block[name], point[name].to_numpy())

    ordered: dict[str, Any] = {}
    for key, value in block.items():
        if key == "mode_probabilities":
            ordered["mode"] = dynamics.MODES[int(point["mode"])]
        if key == "pareto_probability":
            ordered["pareto_optimal"] = bool(point["pareto_optimal"])
        ordered[key] = value
    return ordered


def _with_point(entries: Any, point: np.ndarray) -> Any:
    """Put the point estimate in the ``mean`` slot of each (nested) interval entry."""
    if isinstance(entries, dict):
        return {**entries, "mean": json_number(float(point))}
    return [_with_point(entry, value) for entry, value in zip(entries, point, strict=True)]


def _constant_states(trajectories: xr.Dataset, strategy: str) -> str:
    """Name the objectives whose states never vary within ``strategy``, and the way out."""
    steps = transitions(trajectories)
    state = steps["state"].to_numpy()[steps["strategy"].to_numpy() == strategy]
    constant = [
        str(name)
        for name, spread in zip(steps["objective"].to_numpy(), np.ptp(state, axis=0), strict=True)
        if spread == 0
    ]
    if not constant:
        return "; add sessions"
    return (
        f" (objective(s) {', '.join(map(repr, constant))} never change); leave them out with "
        "--objectives, or add sessions in which they vary"
    )


def _prepare(
    trajectories: xr.Dataset,
    strategies: Sequence[str] | None,
    bounds: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[list[str], list[_SessionSums], tuple[np.ndarray, np.ndarray]]:
    available = list(dict.fromkeys(map(str, trajectories["strategy"].to_numpy())))
    names = check_strategies(available, strategies)
    steps = transitions(trajectories)
    n_parameters = steps.sizes["objective"] + 1

    sums = []
    for name in names:
        selected = steps.isel(transition=steps["strategy"].to_numpy() == name)
        n_transitions = selected.sizes["transition"]
        if n_transitions <= n_parameters:
            raise DataError(
                f"{trajectories.attrs.get('source', 'the data')}: strategy {name!r} has "
                f"{n_transitions} transition(s); least squares of {n_parameters - 1} "
                f"objective(s) needs more than {n_parameters} (add sessions or versions)"
            )
        sums.append(_session_sums(selected))
    bounds = bounds if bounds is not None else objective_bounds(trajectories)
    return names, sums, bounds


def _session_sums(steps: xr.Dataset) -> _SessionSums:
    state = steps["state"].to_numpy()
    change = steps["change"].to_numpy()
    dt = steps["dt"].to_numpy()[:, None]
    codes, sessions = pd.factorize(steps["session"].to_numpy())

    centre = state.mean(axis=0)
    scale = state.std(axis=0)
    scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(centre)), scale, 1.0)
    change_centre = change.mean(axis=0)
    root_dt = np.sqrt(dt)
    regressors = np.column_stack([(state - centre) / scale * root_dt, root_dt])
    response = change / root_dt
    centred_change = change - change_centre

    def per_session(values: np.ndarray) -> np.ndarray:
        out = np.zeros((len(sessions), *values.shape[1:]))
        np.add.at(out, codes, values)
        return out

    return _SessionSums(
        sessions=np.asarray(sessions, dtype=str),
        count=per_session(np.ones(len(codes))),
        s_zz=per_session(regressors[:, :, None] * regressors[:, None, :]),
        s_zy=per_session(regressors[:, :, None] * response[:, None, :]),
        s_yy=per_session(response[:, :, None] * response[:, None, :]),
        y_sum=per_session(response),
        change_sum=per_session(centred_change),
        change_outer=per_session(centred_change[:, :, None] * centred_change[:, None, :]),
        centre=centre,
        scale=scale,
        change_centre=change_centre,
    )


def _fit(sums: dict[str, np.ndarray], item: _SessionSums) -> dict[str, np.ndarray]:
    """Least squares from (batches of) sums; NaN where the normal equations are singular."""
    s_zz, s_zy, count = sums["s_zz"], sums["s_zy"], sums["count"]
    n = s_zy.shape[-1]
    condition = np.linalg.cond(s_zz)
    singular = ~np.isfinite(condition) | (condition > _SINGULAR_CONDITION) | (count <= n + 1)
    safe = np.where(singular[..., None, None], np.eye(n + 1), s_zz)
    coefficients = np.linalg.solve(safe, s_zy)
    coefficients = np.where(singular[..., None, None], np.nan, coefficients)

    drift = np.swapaxes(coefficients[..., :n, :], -1, -2) / item.scale
    intercept = coefficients[..., n, :] - np.einsum("...ij,j->...i", drift, item.centre)
    cross = np.swapaxes(coefficients, -1, -2) @ s_zy
    residual = sums["s_yy"] - cross
    residual = 0.5 * (residual + np.swapaxes(residual, -1, -2))
    total = np.diagonal(sums["s_yy"], axis1=-2, axis2=-1) - sums["y_sum"] ** 2 / count[..., None]
    r2 = 1.0 - np.trace(residual, axis1=-2, axis2=-1) / total.sum(axis=-1)

    mean_change = sums["change_sum"] / count[..., None]
    change_cov = sums["change_outer"] / count[..., None, None] - (
        mean_change[..., :, None] * mean_change[..., None, :]
    )
    return {
        "coefficients": coefficients,
        "drift": drift,
        "intercept": intercept,
        "diffusion_cov": residual / (count[..., None, None] - (n + 1)),
        "r2": r2,
        "interference": dynamics.correlation(change_cov, zero_diagonal=True),
        "count": count,
    }


def _dataset(
    estimates: dict[str, np.ndarray],
    strategies: list[str],
    trajectories: xr.Dataset,
    bounds: tuple[np.ndarray, np.ndarray],
    settings: DynamicsSettings | None,
    sample_dims: tuple[str, ...],
) -> xr.Dataset:
    drift, intercept = estimates["drift"], estimates["intercept"]
    real, imag = dynamics.sorted_eigenvalues(drift)
    point, condition = dynamics.equilibrium(drift, intercept)
    diffusion_cov = estimates["diffusion_cov"]

    strategy = (*sample_dims, "strategy")
    matrix = (*strategy, "objective", "other")
    values = {
        "drift": ((*strategy, "objective", "source"), drift),
        "intercept": ((*strategy, "objective"), intercept),
        "diffusion_cov": (matrix, diffusion_cov),
        "diffusion_correlation": (matrix, dynamics.correlation(diffusion_cov)),
        "eigenvalues_real": ((*strategy, "eigenvalue"), real),
        "eigenvalues_imag": ((*strategy, "eigenvalue"), imag),
        "convergence_rate": (strategy, dynamics.convergence_rate(real)),
        "discrete_stability": (strategy, dynamics.discrete_stability(real, imag)),
        "mode": (strategy, dynamics.classify_modes(real, imag, point, bounds, settings)),
        "equilibrium": ((*strategy, "objective"), point),
        "equilibrium_condition": (strategy, condition),
        "interference": (matrix, estimates["interference"]),
        "r2": (strategy, estimates["r2"]),
        "pareto_optimal": (strategy, dynamics.pareto_optimal(point)),
        "n_transitions": (strategy, estimates["count"]),
    }
    objectives = trajectories["objective"].to_numpy()
    coords: dict[str, Any] = {
        "strategy": np.asarray(strategies, dtype=str),
        "objective": objectives,
        "source": objectives,
        "other": objectives,
        "eigenvalue": np.arange(drift.shape[-1]),
    }
    for axis, dim in enumerate(sample_dims):
        coords[dim] = np.arange(drift.shape[axis])
    dataset = xr.Dataset(
        {name: xr.Variable(dims, array) for name, (dims, array) in values.items()},
        coords=coords,
    )
    if not sample_dims:
        dataset["n_transitions"] = dataset["n_transitions"].astype(int)
    dataset["mode"].attrs.update(
        flag_values=list(range(len(dynamics.MODES))), flag_meanings=" ".join(dynamics.MODES)
    )
    dataset["interference"].attrs["description"] = (
        "correlation of the observed one-step changes, diagonal set to 0"
    )
    dataset["diffusion_cov"].attrs["description"] = "residual covariance, divided by N - n - 1"
    return dataset


def _data_attrs(trajectories: xr.Dataset) -> dict[str, Any]:
    versions = trajectories["time"].notnull().sum("step").to_numpy()
    return {
        "method": "least_squares",
        "source": str(trajectories.attrs.get("source", "")),
        "sessions": int(trajectories.sizes["session"]),
        "sessions_without_transitions": int((versions < 2).sum()),
        "discretization": "euler",
    }
