r"""Posterior predictive checks: replicated trajectories, test statistics and p-values.

For a subset of posterior draws (thinned at random, seeded) every observed session is
replicated by Euler-Maruyama from its own observed first version, on its own observed times,
with the strategy's drift, intercept and diffusion of that draw:

.. math::

    \tilde x_{j+1} = \tilde x_j + (A_s \tilde x_j + b_s)\,\Delta t_j
    + L_s \sqrt{\Delta t_j}\,\varepsilon_j, \qquad \tilde x_0 = x_0 .

Replicates therefore have the observed initial states and session lengths, and statistics of
observed and replicated data are comparable entry by entry. Generation is vectorised over
draws and uses the NumPy parameters stored in the posterior (no PyMC model is compiled).

Test statistics (per strategy and objective, see :data:`STATISTICS`) are computed on the
observed and on each replicated data set. The posterior predictive p-value of a statistic
:math:`T` is

.. math::

    p = \Pr\big(T(\tilde y, \theta) \ge T(y, \theta) \mid y\big)
      \approx \frac{1}{S} \sum_{d=1}^{S} \Big[\mathbb 1\{T(\tilde y^{(d)}, \theta^{(d)})
      > T(y, \theta^{(d)})\} + \tfrac12 \mathbb 1\{T(\tilde y^{(d)}, \theta^{(d)})
      = T(y, \theta^{(d)})\}\Big],

with ties counted half. Values near 0 or near 1 both say that the model does not reproduce
the statistic. Most statistics depend on the data only; the residual autocorrelation also
depends on the parameters (a realised discrepancy [1]_), and its "observed" value is the
posterior mean of :math:`T(y, \theta)`.

The final scores are also checked one session at a time: the probability integral transform
(PIT) of each session's observed final score among its replicated final scores is uniform
when the model is calibrated; uniformity is tested with the ``pot_c`` test of arviz-stats
[2]_.

References
----------
.. [1] Gelman, A., Meng, X.-L. and Stern, H. (1996). Posterior predictive assessment of model
   fitness via realized discrepancies. Statistica Sinica 6, 733-807.
.. [2] Tesso, H. et al. (2026). LOO-PIT predictive model checking. arXiv:2603.02928.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from sdebayes.dynamics import correlation
from sdebayes.exceptions import DataError
from sdebayes.summary import resolve_ci_prob

__all__ = [
    "DEFAULT_DRAWS",
    "STATISTICS",
    "PosteriorPredictiveCheck",
    "observed_trajectories",
    "posterior_predictive_check",
    "replicate_trajectories",
]

logger = logging.getLogger(__name__)

DEFAULT_DRAWS = 300
"""Posterior draws replicated by default: enough for p-values to about +-0.03."""

STATISTICS: dict[str, str] = {
    "change_mean": "mean of the one-step changes",
    "change_sd": "standard deviation of the one-step changes",
    "interference": "correlation of two objectives' one-step changes",
    "residual_autocorrelation": "lag-1 autocorrelation of the one-step residuals",
    "final_sd": "standard deviation of the sessions' final scores",
    "final_q10": "10% quantile of the sessions' final scores",
    "final_q90": "90% quantile of the sessions' final scores",
    "final_pit": "share of final scores outside their central predictive interval",
}
"""Test statistics of :func:`posterior_predictive_check`, by name, with what each measures.

``interference`` is computed per pair of objectives (its objective label is ``"a~b"``); all
others per objective. The mean final score is left out on purpose: with the initial versions
held fixed it is an affine function of the mean change and would repeat its p-value.
``final_pit`` is not a replicated statistic: its p-value is that of the ``pot_c`` uniformity
test of the final-score PIT values, and its observed value the share of sessions whose final
score lies outside the central ``ci_prob`` predictive interval.
"""

_PAIR = "~"


@dataclass(frozen=True)
class PosteriorPredictiveCheck:
    """Replicated trajectories, test statistics and p-values of one posterior.

    Attributes
    ----------
    observed : xarray.Dataset
        The observed versions in long form: ``scores`` (version, objective) and ``time``
        (version), with coordinates ``session``, ``strategy`` and ``step`` on ``version``.
        ``.set_index(version=["session", "step"]).unstack("version")`` gives the
        (session, step) grid.
    replicates : xarray.Dataset
        ``scores`` (draw, version, objective), laid out as ``observed``; the coordinates
        ``chain`` and ``posterior_draw`` on ``draw`` name the posterior draw each replicate
        was generated from.
    statistics : xarray.Dataset
        Along dimension ``check`` (coordinates ``strategy``, ``objective``, ``statistic``):
        ``observed`` (check, draw), ``replicated`` (check, draw), ``observed_value`` (check,
        the mean of ``observed`` over draws) and ``p_value`` (check). NaN where a statistic
        is undefined (for instance no session has three versions, so no residual pairs).
    pit : xarray.Dataset
        ``final_pit`` (final, objective): PIT of each session's observed final score among
        its replicates, for sessions with at least two versions, with coordinates
        ``session`` and ``strategy`` on ``final``.
    ci_prob : float
        Probability of the central predictive intervals used by ``final_pit``.
    """

    observed: xr.Dataset
    replicates: xr.Dataset
    statistics: xr.Dataset
    pit: xr.Dataset
    ci_prob: float

    def rows(self) -> list[dict[str, Any]]:
        """Return one JSON-ready row per check.

        Returns
        -------
        list of dict
            ``{"strategy", "objective", "name", "observed", "p_value"}``; undefined values
            are ``None``.
        """
        stats = self.statistics
        return [
            {
                "strategy": str(stats["strategy"].values[i]),
                "objective": str(stats["objective"].values[i]),
                "name": str(stats["statistic"].values[i]),
                "observed": _number(stats["observed_value"].values[i]),
                "p_value": _number(stats["p_value"].values[i]),
            }
            for i in range(stats.sizes["check"])
        ]

    def extreme(self, tail: float = 0.025) -> list[dict[str, Any]]:
        """Return the rows whose p-value lies within ``tail`` of 0 or 1.

        Parameters
        ----------
        tail : float, default=0.025
            A p-value below ``tail`` or above ``1 - tail`` counts as extreme; for
            ``final_pit``, whose p-value comes from a one-sided uniformity test, one below
            ``2 * tail``. With many checks, a share ``2 * tail`` of them is expected to be
            extreme by chance.

        Returns
        -------
        list of dict
            Rows as :meth:`rows` gives them.
        """
        if not 0 < tail < 0.5:
            raise ValueError(f"tail={tail!r} must lie strictly between 0 and 0.5, e.g. 0.025")
        return [row for row in self.rows() if _is_extreme(row, tail)]


def _is_extreme(row: dict[str, Any], tail: float) -> bool:
    p_value = row["p_value"]
    if p_value is None:
        return False
    if row["name"] == "final_pit":
        return p_value < 2 * tail
    return not tail <= p_value <= 1 - tail


def observed_trajectories(tree: xr.DataTree, trajectories: xr.Dataset | None = None) -> xr.Dataset:
    """Return the trajectories to check: those given, or the ones stored in the fit.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (see :func:`sdebayes.fit.fit`).
    trajectories : xarray.Dataset, optional
        Trajectories as read by :func:`sdebayes.data.read_trajectories`. Default: the
        ``observed_data`` group of ``tree``, i.e. the data the posterior was fitted to.

    Returns
    -------
    xarray.Dataset
        ``scores`` (session, step, objective), ``time`` (session, step) and ``strategy`` on
        ``session``.

    Raises
    ------
    DataError
        If the trajectories have other objectives than the fit or strategies it lacks.
    """
    if trajectories is None:
        if "observed_data" not in tree.children:
            raise DataError(
                "the posterior has no observed_data group; pass the trajectories it was fitted to"
            )
        return tree["observed_data"].to_dataset()

    fitted = list(map(str, tree["posterior"]["objective"].to_numpy()))
    given = list(map(str, trajectories["objective"].to_numpy()))
    source = trajectories.attrs.get("source", "the data")
    if given != fitted:
        raise DataError(
            f"{source}: objectives {', '.join(given)} differ from the posterior's "
            f"{', '.join(fitted)}; pass a table with these objective columns"
        )
    known = set(map(str, tree["posterior"]["strategy"].to_numpy()))
    unknown = sorted(set(map(str, trajectories["strategy"].to_numpy())) - known)
    if unknown:
        raise DataError(
            f"{source}: strategy(ies) {', '.join(map(repr, unknown))} are not in the "
            f"posterior, which has {', '.join(sorted(known))}; remove their rows"
        )
    return trajectories


def replicate_trajectories(
    tree: xr.DataTree,
    trajectories: xr.Dataset | None = None,
    *,
    n_draws: int = DEFAULT_DRAWS,
    random_seed: int | np.random.Generator | None = 0,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Replicate every observed session from posterior draws by Euler-Maruyama.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit whose posterior holds ``drift``, ``intercept`` and ``diffusion_cov`` in the
        objectives' own units.
    trajectories : xarray.Dataset, optional
        Sessions to replicate. Default: the data the posterior was fitted to.
    n_draws : int, default=300
        Posterior draws to replicate from, chosen at random without replacement (all of
        them if the posterior has fewer).
    random_seed : int or numpy.random.Generator, optional, default=0
        Seed of the thinning and of the simulated noise.

    Returns
    -------
    observed, replicates : xarray.Dataset
        See :class:`PosteriorPredictiveCheck`.

    Raises
    ------
    DataError
        If the trajectories do not match the posterior.
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 1:
        raise ValueError(f"n_draws={n_draws!r} must be a positive integer, e.g. n_draws=300")
    rng = np.random.default_rng(random_seed)
    observed = _long_form(observed_trajectories(tree, trajectories))
    parameters = _thinned_parameters(tree, int(n_draws), rng)
    strategy_code = _strategy_codes(observed, parameters["strategy"])
    moments = _Moments(parameters, _discretization(tree))

    scores = _simulate(observed, strategy_code, moments, rng)
    replicates = xr.Dataset(
        {"scores": (("draw", "version", "objective"), scores)},
        coords={
            "draw": np.arange(scores.shape[0]),
            "chain": ("draw", parameters["chain"]),
            "posterior_draw": ("draw", parameters["draw"]),
            **{name: observed[name] for name in ("session", "strategy", "step", "objective")},
        },
        attrs={
            "n_draws": int(scores.shape[0]),
            "random_seed": _seed_attr(random_seed),
            "discretization": moments.discretization,
        },
    )
    logger.debug("replicated %d versions from %d draws", scores.shape[1], scores.shape[0])
    return observed, replicates


def posterior_predictive_check(
    tree: xr.DataTree,
    trajectories: xr.Dataset | None = None,
    *,
    n_draws: int = DEFAULT_DRAWS,
    random_seed: int | np.random.Generator | None = 0,
    ci_prob: float | None = None,
) -> PosteriorPredictiveCheck:
    """Replicate the data from the posterior and compare test statistics.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (see :func:`sdebayes.fit.fit`) or a file read by
        :func:`sdebayes.io_netcdf.load_posterior`.
    trajectories : xarray.Dataset, optional
        Sessions to check. Default: the data the posterior was fitted to (stored in the fit).
    n_draws : int, default=300
        Posterior draws to replicate from.
    random_seed : int or numpy.random.Generator, optional, default=0
        Seed of the thinning, the simulated noise and the PIT tie-breaking.
    ci_prob : float, optional
        Probability of the central predictive intervals of ``final_pit``. Default: ArviZ's
        ``stats.ci_prob`` (0.89).

    Returns
    -------
    PosteriorPredictiveCheck

    Raises
    ------
    DataError
        If the trajectories do not match the posterior.

    See Also
    --------
    sdebayes.plots.write_figures : figures of the check.

    Examples
    --------
    >>> check = posterior_predictive_check(tree, n_draws=200, random_seed=1)  # doctest: +SKIP
    >>> check.extreme()  # doctest: +SKIP
    []
    """
    ci_prob = resolve_ci_prob(ci_prob)
    rng = np.random.default_rng(random_seed)
    observed, replicates = replicate_trajectories(
        tree, trajectories, n_draws=n_draws, random_seed=rng
    )
    posterior = tree["posterior"].to_dataset()
    strategies = list(map(str, posterior["strategy"].to_numpy()))
    present = [name for name in strategies if name in set(observed["strategy"].to_numpy())]
    parameters = _thinned_parameters_like(posterior, replicates)
    moments = _Moments(parameters, _discretization(tree))

    pit = _final_pit(observed, replicates, rng)
    statistics = _statistics(observed, replicates, moments, present, pit, ci_prob)
    return PosteriorPredictiveCheck(
        observed=observed,
        replicates=replicates,
        statistics=statistics,
        pit=pit,
        ci_prob=ci_prob,
    )


def _discretization(tree: xr.DataTree) -> str:
    return str(tree.attrs.get("discretization", "euler"))


def _seed_attr(random_seed: int | np.random.Generator | None) -> int:
    return int(random_seed) if isinstance(random_seed, int | np.integer) else -1


def _number(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def _long_form(trajectories: xr.Dataset) -> xr.Dataset:
    """Observed versions in session order, as data.transitions finds them (finite times)."""
    scores = trajectories["scores"].to_numpy()
    time = trajectories["time"].to_numpy()
    session_index, step_index = np.nonzero(np.isfinite(time))
    return xr.Dataset(
        {
            "scores": (("version", "objective"), scores[session_index, step_index]),
            "time": ("version", time[session_index, step_index]),
        },
        coords={
            "session": ("version", trajectories["session"].to_numpy()[session_index]),
            "strategy": ("version", trajectories["strategy"].to_numpy()[session_index]),
            "step": ("version", trajectories["step"].to_numpy()[step_index]),
            "objective": trajectories["objective"].to_numpy(),
        },
    )


def _strategy_codes(observed: xr.Dataset, strategies: np.ndarray) -> np.ndarray:
    labels = list(map(str, strategies))
    lookup = {name: code for code, name in enumerate(labels)}
    try:
        return np.array([lookup[str(name)] for name in observed["strategy"].to_numpy()], int)
    except KeyError as err:
        raise DataError(
            f"strategy {err.args[0]!r} is not in the posterior, which has {', '.join(labels)}"
        ) from err


def _thinned_parameters(
    tree: xr.DataTree, n_draws: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    posterior = tree["posterior"].to_dataset()
    missing = [name for name in ("drift", "intercept", "diffusion_cov") if name not in posterior]
    if missing:
        raise DataError(
            f"the posterior lacks {', '.join(missing)}; pass a file written by sdebayes sample"
        )
    n_chains, n_per_chain = posterior.sizes["chain"], posterior.sizes["draw"]
    total = n_chains * n_per_chain
    chosen = np.sort(rng.choice(total, size=min(n_draws, total), replace=False))
    chain, draw = np.divmod(chosen, n_per_chain)
    return _parameters_at(posterior, chain, draw)


def _thinned_parameters_like(
    posterior: xr.Dataset, replicates: xr.Dataset
) -> dict[str, np.ndarray]:
    return _parameters_at(
        posterior, replicates["chain"].to_numpy(), replicates["posterior_draw"].to_numpy()
    )


def _parameters_at(
    posterior: xr.Dataset, chain: np.ndarray, draw: np.ndarray
) -> dict[str, np.ndarray]:
    def take(name: str, *dims: str) -> np.ndarray:
        values = posterior[name].transpose("chain", "draw", "strategy", *dims).to_numpy()
        return values[chain, draw]

    return {
        "chain": chain,
        "draw": draw,
        "strategy": posterior["strategy"].to_numpy(),
        "drift": take("drift", "objective", "source"),
        "intercept": take("intercept", "objective"),
        "diffusion_cov": take("diffusion_cov", "objective", "other"),
    }


def _noise_factor(covariance: np.ndarray) -> np.ndarray:
    """Return a matrix square root of each covariance (Cholesky, or eigenvectors if not PD)."""
    try:
        return np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(covariance)
        return vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]


class _Moments:
    """Moments of the change over ``dt`` per strategy code, cached.

    ``(M, g, S)``: the change from ``x`` has mean ``x M^T + g`` and noise ``eps S^T``.
    Euler: ``M = A dt``, ``g = b dt``, ``S S^T = Sigma dt``; exact: ``M = expm(A dt) - I``
    with the exact shift and covariance of :func:`sdebayes.transitions.exact_moments`.
    """

    def __init__(self, parameters: dict[str, np.ndarray], discretization: str):
        if discretization not in ("euler", "exact"):
            raise NotImplementedError(
                f"discretization={discretization!r} has no replicate generator; "
                "fits use 'euler' or 'exact'"
            )
        self.parameters = parameters
        self.discretization = discretization
        self.cache: dict[tuple[int, float], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.factors: dict[int, np.ndarray] = {}

    def __call__(self, code: int, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = (int(code), float(dt))
        if key not in self.cache:
            drift = self.parameters["drift"][:, code]
            intercept = self.parameters["intercept"][:, code]
            cov = self.parameters["diffusion_cov"][:, code]
            if self.discretization == "exact":
                from sdebayes.transitions import exact_moments

                transition, shift, noise = exact_moments(drift, intercept, cov, np.array([dt]))
                change = transition[:, 0] - np.eye(drift.shape[-1])
                self.cache[key] = (change, shift[:, 0], _noise_factor(noise[:, 0]))
            else:
                if code not in self.factors:
                    self.factors[code] = _noise_factor(cov)
                self.cache[key] = (drift * dt, intercept * dt, self.factors[code] * np.sqrt(dt))
        return self.cache[key]

    def expected_change(self, code: int, state: np.ndarray, dt: np.ndarray) -> np.ndarray:
        """Mean change from ``state`` (draw or 1, k, n) over each ``dt`` (k,)."""
        result = np.empty(np.broadcast_shapes(state.shape, (self.n_draws, 1, 1)))
        for value in np.unique(dt):
            index = np.flatnonzero(dt == value)
            change, shift, _ = self(code, value)
            result[:, index] = state[:, index] @ np.swapaxes(change, -1, -2) + shift[:, None]
        return result

    @property
    def n_draws(self) -> int:
        return int(self.parameters["drift"].shape[0])


def _simulate(
    observed: xr.Dataset,
    strategy_code: np.ndarray,
    moments: _Moments,
    rng: np.random.Generator,
) -> np.ndarray:
    """Replicates (draw, version, objective), each session from its observed first version."""
    scores = observed["scores"].to_numpy()
    time = observed["time"].to_numpy()
    session = observed["session"].to_numpy()
    first = np.r_[True, session[1:] != session[:-1]]
    position = np.arange(len(first)) - np.maximum.accumulate(
        np.where(first, np.arange(len(first)), 0)
    )
    replicated = np.broadcast_to(scores, (moments.n_draws, *scores.shape)).copy()

    for step in range(1, int(position.max(initial=0)) + 1):
        at_step = np.flatnonzero(position == step)
        dt = time[at_step] - time[at_step - 1]
        for code in np.unique(strategy_code[at_step]):
            for value in np.unique(dt[strategy_code[at_step] == code]):
                index = at_step[(strategy_code[at_step] == code) & (dt == value)]
                change, shift, factor = moments(code, value)
                state = replicated[:, index - 1]
                noise = rng.standard_normal(state.shape) @ np.swapaxes(factor, -1, -2)
                mean = state @ np.swapaxes(change, -1, -2) + shift[:, None]
                replicated[:, index] = state + mean + noise
    return replicated


def _layout(observed: xr.Dataset) -> dict[str, np.ndarray]:
    """Index arrays of transitions, consecutive transition pairs and final versions."""
    session = observed["session"].to_numpy()
    new = np.r_[True, session[1:] != session[:-1]]
    last = np.r_[session[1:] != session[:-1], True]
    end = np.flatnonzero(~new)
    pair = np.flatnonzero(end[1:] == end[:-1] + 1)
    return {
        "end": end,
        "pair": pair,
        "final": np.flatnonzero(last & ~new),
        "strategy": observed["strategy"].to_numpy(),
    }


def _final_pit(
    observed: xr.Dataset, replicates: xr.Dataset, rng: np.random.Generator
) -> xr.Dataset:
    """Randomised rank of each observed final score among its replicates, in (0, 1).

    With ``S`` replicates, ``(#below + U (#equal + 1)) / (S + 1)`` with ``U ~ Uniform(0, 1)``
    is exactly uniform when the observation is exchangeable with its replicates. The plain
    share of replicates below is not: it hits 0 or 1 with probability ``2 / (S + 1)``, and
    one such value makes the pointwise order test reject.
    """
    final = _layout(observed)["final"]
    actual = observed["scores"].to_numpy()[final]
    simulated = replicates["scores"].to_numpy()[:, final]
    below = (simulated < actual).sum(axis=0)
    equal = (simulated == actual).sum(axis=0)
    uniform = rng.uniform(size=below.shape)
    values = (below + uniform * (equal + 1)) / (simulated.shape[0] + 1)
    return xr.Dataset(
        {"final_pit": (("final", "objective"), values)},
        coords={
            "session": ("final", observed["session"].to_numpy()[final]),
            "strategy": ("final", observed["strategy"].to_numpy()[final]),
            "objective": observed["objective"].to_numpy(),
        },
    )


def _statistics(
    observed: xr.Dataset,
    replicates: xr.Dataset,
    moments: _Moments,
    strategies: Sequence[str],
    pit: xr.Dataset,
    ci_prob: float,
) -> xr.Dataset:
    layout = _layout(observed)
    objectives = list(map(str, observed["objective"].to_numpy()))
    time = observed["time"].to_numpy()
    actual = observed["scores"].to_numpy()[None]
    simulated = replicates["scores"].to_numpy()
    codes = {str(name): code for code, name in enumerate(moments.parameters["strategy"])}

    rows: list[tuple[str, str, str, np.ndarray, np.ndarray]] = []
    for name in strategies:
        code = codes[name]
        mine = _strategy_layout(layout, name)
        values_obs = _strategy_statistics(actual, time, mine, moments, code)
        values_rep = _strategy_statistics(simulated, time, mine, moments, code)
        for statistic, (labels, _) in values_obs.items():
            for i, label in enumerate(_labels(labels, objectives)):
                obs = np.broadcast_to(values_obs[statistic][1][..., i], simulated.shape[:1])
                rep = values_rep[statistic][1][..., i]
                rows.append((name, label, statistic, obs, rep))

    n_draws = simulated.shape[0]
    observed_values = np.array([row[3] for row in rows]).reshape(len(rows), n_draws)
    replicated_values = np.array([row[4] for row in rows]).reshape(len(rows), n_draws)
    p_values = _p_values(observed_values, replicated_values)

    pit_rows = _pit_rows(pit, strategies, objectives, ci_prob)
    nan = np.full((len(pit_rows), n_draws), np.nan)
    keys = [row[:3] for row in rows] + [row[:3] for row in pit_rows]
    with np.errstate(invalid="ignore"):
        observed_mean = _nanmean(observed_values)
    names = list(STATISTICS)
    order = sorted(
        range(len(keys)),
        key=lambda k: (list(strategies).index(keys[k][0]), names.index(keys[k][2])),
    )
    return (
        xr.Dataset(
            {
                "observed": (("check", "draw"), np.concatenate([observed_values, nan])),
                "replicated": (("check", "draw"), np.concatenate([replicated_values, nan])),
                "observed_value": (
                    "check",
                    np.concatenate([observed_mean, [row[3] for row in pit_rows]]),
                ),
                "p_value": ("check", np.concatenate([p_values, [row[4] for row in pit_rows]])),
            },
            coords={
                "check": np.arange(len(keys)),
                "strategy": ("check", np.array([key[0] for key in keys], dtype=str)),
                "objective": ("check", np.array([key[1] for key in keys], dtype=str)),
                "statistic": ("check", np.array([key[2] for key in keys], dtype=str)),
                "draw": replicates["draw"].to_numpy(),
            },
            attrs={"ci_prob": ci_prob, "n_draws": n_draws},
        )
        .isel(check=order)
        .assign_coords(check=np.arange(len(keys)))
    )


def _nanmean(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    count = finite.sum(axis=-1)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _labels(kind: str, objectives: list[str]) -> list[str]:
    if kind == "pair":
        n = len(objectives)
        return [f"{objectives[i]}{_PAIR}{objectives[j]}" for i in range(n) for j in range(i + 1, n)]
    return objectives


def _strategy_layout(layout: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    strategy = layout["strategy"]
    end = layout["end"]
    mine = strategy[end] == name
    pair = layout["pair"]
    pair = pair[mine[pair]]
    # positions of the pairs' transitions within this strategy's transitions
    rank = np.cumsum(mine) - 1
    return {
        "end": end[mine],
        "pair": rank[pair],
        "final": layout["final"][strategy[layout["final"]] == name],
    }


def _strategy_statistics(
    scores: np.ndarray,
    time: np.ndarray,
    layout: dict[str, np.ndarray],
    moments: _Moments,
    code: int,
) -> dict[str, tuple[str, np.ndarray]]:
    """Every statistic for one strategy, shape (draw or 1, objective or pair)."""
    end = layout["end"]
    state = scores[:, end - 1]
    change = scores[:, end] - state
    dt = time[end] - time[end - 1]
    final = scores[:, layout["final"]]

    residual = change - moments.expected_change(code, state, dt)
    residual = residual / np.sqrt(dt)[None, :, None]
    pair = layout["pair"]

    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "change_mean": ("objective", _mean(change)),
            "change_sd": ("objective", _sd(change)),
            "interference": ("pair", _upper(correlation(_cov(change)))),
            "residual_autocorrelation": (
                "objective",
                _pearson(residual[:, pair], residual[:, pair + 1]),
            ),
            "final_sd": ("objective", _sd(final)),
            "final_q10": ("objective", _quantile(final, 0.1)),
            "final_q90": ("objective", _quantile(final, 0.9)),
        }


def _mean(values: np.ndarray) -> np.ndarray:
    if values.shape[1] == 0:
        return np.full((values.shape[0], values.shape[2]), np.nan)
    return values.mean(axis=1)


def _sd(values: np.ndarray) -> np.ndarray:
    if values.shape[1] < 2:
        return np.full((values.shape[0], values.shape[2]), np.nan)
    return values.std(axis=1, ddof=1)


def _quantile(values: np.ndarray, probability: float) -> np.ndarray:
    if values.shape[1] < 2:
        return np.full((values.shape[0], values.shape[2]), np.nan)
    return np.quantile(values, probability, axis=1)


def _cov(values: np.ndarray) -> np.ndarray:
    if values.shape[1] < 2:
        return np.full((values.shape[0], values.shape[2], values.shape[2]), np.nan)
    centred = values - values.mean(axis=1, keepdims=True)
    return np.einsum("dki,dkj->dij", centred, centred) / (values.shape[1] - 1)


def _upper(matrix: np.ndarray) -> np.ndarray:
    rows, cols = np.triu_indices(matrix.shape[-1], k=1)
    return matrix[..., rows, cols]


def _pearson(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Correlation of ``first`` and ``second`` over axis 1, per draw and objective."""
    if first.shape[1] < 3:
        return np.full((first.shape[0], first.shape[2]), np.nan)
    a = first - first.mean(axis=1, keepdims=True)
    b = second - second.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    return np.where(
        denominator > 0, (a * b).sum(axis=1) / np.where(denominator > 0, denominator, 1), np.nan
    )


def _p_values(observed: np.ndarray, replicated: np.ndarray) -> np.ndarray:
    """Share of draws with T(rep) > T(obs), ties counted half; NaN draws left out."""
    valid = np.isfinite(observed) & np.isfinite(replicated)
    score = np.where(replicated > observed, 1.0, 0.0) + np.where(replicated == observed, 0.5, 0.0)
    count = valid.sum(axis=-1)
    total = np.where(valid, score, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _pit_rows(
    pit: xr.Dataset, strategies: Sequence[str], objectives: list[str], ci_prob: float
) -> list[tuple[str, str, str, float, float]]:
    """Per strategy and objective: share outside the central interval, pot_c p-value."""
    from arviz_stats.base import array_stats

    values = pit["final_pit"].to_numpy()
    strategy = pit["strategy"].to_numpy()
    tail = (1.0 - ci_prob) / 2.0
    rows = []
    for name in strategies:
        mine = values[strategy == name]
        for i, objective in enumerate(objectives):
            column = mine[:, i]
            if column.size < 2:
                rows.append((name, objective, "final_pit", np.nan, np.nan))
                continue
            outside = float(np.mean((column < tail) | (column > 1.0 - tail)))
            p_value = float(array_stats.uniformity_test(column, method="pot_c")[0])
            rows.append((name, objective, "final_pit", outside, p_value))
    return rows
