r"""Simulate trajectories from the linear SDE and describe the truth behind them.

The simulator integrates :math:`dx = (A_s x + b_s)\,dt + L_s\,dW` by Euler-Maruyama, which
is the model sdebayes fits, so fitting simulated data tests the inference itself (recovery
and calibration). Scores are not clipped to any range: the linear SDE has no bounds, and
clipping would make the data disagree with the model being tested.

:func:`paper_scenario` is calibrated to the tables of the study sdebayes follows; its
docstring lists every choice and every published number it does not reproduce.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from sdebayes import dynamics
from sdebayes.data import objective_bounds, trajectories_from_frame, transitions
from sdebayes.specs import DynamicsSettings
from sdebayes.sufficient_stats import standardization, sufficient_statistics
from sdebayes.transitions import choose_discretization, exact_moments, typical_step

__all__ = [
    "SCENARIOS",
    "Scenario",
    "StrategyDynamics",
    "objective_bounds",
    "paper_scenario",
    "simulate_sessions",
    "true_quantities",
    "truth_document",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StrategyDynamics:
    r"""True parameters of one strategy.

    Parameters
    ----------
    drift : numpy.ndarray, shape (n, n)
        Drift matrix :math:`A`.
    intercept : numpy.ndarray, shape (n,)
        Intercept :math:`b`; the equilibrium is :math:`-A^{-1} b`.
    diffusion_cov : numpy.ndarray, shape (n, n)
        Diffusion covariance :math:`\Sigma = L L^\top` per unit time.
    initial_mean, initial_sd : numpy.ndarray, shape (n,)
        Independent normal distribution of the first version's scores.
    """

    drift: np.ndarray
    intercept: np.ndarray
    diffusion_cov: np.ndarray
    initial_mean: np.ndarray
    initial_sd: np.ndarray

    @classmethod
    def from_equilibrium(
        cls,
        drift: ArrayLike,
        equilibrium: ArrayLike,
        diffusion_cov: ArrayLike,
        initial_mean: ArrayLike,
        initial_sd: ArrayLike,
    ) -> StrategyDynamics:
        """Build the parameters from a drift matrix and the equilibrium it should reach."""
        drift = np.asarray(drift, dtype=float)
        intercept = -drift @ np.asarray(equilibrium, dtype=float)
        return cls(
            drift,
            intercept,
            np.asarray(diffusion_cov, dtype=float),
            np.asarray(initial_mean, dtype=float),
            np.asarray(initial_sd, dtype=float),
        )


@dataclass(frozen=True)
class Scenario:
    """A named set of strategies with known dynamics."""

    name: str
    objectives: tuple[str, ...]
    strategies: dict[str, StrategyDynamics]
    description: str = ""


def _drift_from_spectrum(eigenvalues: list[complex], vectors: np.ndarray) -> np.ndarray:
    """Real matrix with the given eigenvalues; complex pairs use a real 2x2 block."""
    block = np.zeros((len(eigenvalues), len(eigenvalues)))
    i = 0
    while i < len(eigenvalues):
        value = complex(eigenvalues[i])
        if value.imag:
            block[i : i + 2, i : i + 2] = [[value.real, value.imag], [-value.imag, value.real]]
            i += 2
        else:
            block[i, i] = value.real
            i += 1
    return vectors @ block @ np.linalg.inv(vectors)


def _diffusion(sd: list[float], corr_sec_eff: float, corr_sec_fun: float, corr_eff_fun: float):
    corr = np.array(
        [
            [1.0, corr_sec_eff, corr_sec_fun],
            [corr_sec_eff, 1.0, corr_eff_fun],
            [corr_sec_fun, corr_eff_fun, 1.0],
        ]
    )
    return np.outer(sd, sd) * corr


def paper_scenario() -> Scenario:
    r"""Four strategies calibrated to the published tables of arXiv 2510.10739.

    Objectives are ``security``, ``efficiency`` and ``functionality`` on a 0-10 scale;
    strategies are efficiency-focused (``EF``), safety-focused (``SF``),
    functionality-focused (``FF``) and adaptive integration (``AI``).

    Returns
    -------
    Scenario

    Notes
    -----
    What is reproduced, with sdebayes' definitions (``docs/model.md``):

    * Convergence rate :math:`-\max \operatorname{Re}\lambda` of EF 0.33, SF 1.08 and
      AI 0.15, as published.
    * Modes: EF has real negative eigenvalues (-0.33, -0.55, -0.80); SF a complex pair
      :math:`-1.08 \pm 0.45i` and -1.45 (damped oscillation); FF a near-zero eigenvalue
      (-0.01) along the security axis; AI three close, slow real eigenvalues (-0.15, -0.20,
      -0.26), which is how "balanced" is read here: all objectives settle at similar rates.
    * Equilibria exactly as published: EF (5.25, 4.65, 7.26), SF (5.75, 3.90, 8.20),
      FF (0.00, 2.10, 8.75), AI (4.00, 4.20, 8.20).
    * The diffusion scale (one standard deviation for all objectives) and the diffusion
      correlations of functionality with the other two objectives were tuned per strategy
      (``benchmarks/calibrate_paper_scenario.py``) so that the model-implied interference is
      close to the published -0.17 (functionality-efficiency) and -0.09
      (functionality-security), and the one-step :math:`R^2` close to the published 0.58
      (EF), 0.72 (SF), 0.50 (FF) and 0.74 (AI). On 2,000 sessions of 10 steps (seed
      20251012) the realised values are :math:`R^2` 0.580, 0.718, 0.499, 0.743,
      functionality-efficiency interference -0.170, -0.175, -0.177, -0.187 and
      functionality-security -0.090, -0.094, -0.091, -0.081 (EF, SF, FF, AI). With 100
      sessions per strategy they scatter more widely (AI's functionality-efficiency
      interference is -0.34 in the bundled data), because AI's small diffusion makes its
      interference depend on the sampled states. The diffusion correlations that achieve
      the targets differ in sign between strategies (AI's security-functionality noise
      correlation is +0.33):
      the interference mixes noise coupling with drift coupling.

    What cannot hold at once, and the choice made:

    * FF is published with the fastest rate (1.29) *and* a near-zero eigenvalue. Under the
      slowest-mode definition of the rate these contradict each other, so FF keeps the
      near-zero eigenvalue (its mode is "boundary") and 1.29 is its *fastest* mode instead;
      its true convergence rate under sdebayes' definition is 0.01.
    * The published interference and :math:`R^2` are data statistics, so the values realised
      in any simulated dataset scatter around the targets; ``true_quantities`` reports the
      realised values of a given dataset, not the targets.
    * The linear SDE does not respect the 0-10 range: FF's security equilibrium is 0, so FF
      sessions reach slightly negative security scores. They are not clipped (see module
      docstring).
    * The study's sessions start from unspecified first versions; here every strategy starts
      from independent normals with means (5.0, 5.0, 6.0) and standard deviations 1.5.
    """
    start_mean = np.array([5.0, 5.0, 6.0])
    start_sd = np.array([1.5, 1.5, 1.5])
    mixing = np.array([[1.0, 0.2, -0.1], [0.15, 1.0, 0.2], [-0.2, 0.1, 1.0]])

    strategies = {
        "EF": StrategyDynamics.from_equilibrium(
            _drift_from_spectrum([-0.33, -0.55, -0.80], mixing),
            [5.25, 4.65, 7.26],
            _diffusion(*_PAPER_NOISE["EF"]),
            start_mean,
            start_sd,
        ),
        "SF": StrategyDynamics.from_equilibrium(
            _drift_from_spectrum([-1.08 + 0.45j, -1.08 - 0.45j, -1.45], mixing),
            [5.75, 3.90, 8.20],
            _diffusion(*_PAPER_NOISE["SF"]),
            start_mean,
            start_sd,
        ),
        "FF": StrategyDynamics.from_equilibrium(
            _drift_from_spectrum([-0.01, -0.70, -1.29], np.eye(3) + 0.5 * (mixing - np.eye(3))),
            [0.00, 2.10, 8.75],
            _diffusion(*_PAPER_NOISE["FF"]),
            start_mean,
            start_sd,
        ),
        "AI": StrategyDynamics.from_equilibrium(
            _drift_from_spectrum([-0.15, -0.20, -0.26], mixing),
            [4.00, 4.20, 8.20],
            _diffusion(*_PAPER_NOISE["AI"]),
            start_mean,
            start_sd,
        ),
    }
    return Scenario(
        name="paper",
        objectives=("security", "efficiency", "functionality"),
        strategies=strategies,
        description="Four strategies calibrated to arXiv 2510.10739 (see paper_scenario).",
    )


# Per strategy: diffusion standard deviations (security, efficiency, functionality) and the
# correlations (security-efficiency, security-functionality, efficiency-functionality).
# Tuned by benchmarks/calibrate_paper_scenario.py; see paper_scenario's Notes.
_PAPER_NOISE: dict[str, tuple[list[float], float, float, float]] = {
    "EF": ([0.36, 0.36, 0.36], 0.0, -0.071, -0.298),
    "SF": ([1.171, 1.171, 1.171], 0.0, -0.572, -0.441),
    "FF": ([1.485, 1.485, 1.485], 0.0, -0.004, -0.172),
    "AI": ([0.113, 0.113, 0.113], 0.0, 0.325, -0.349),
}

SCENARIOS = {"paper": paper_scenario}
"""Scenarios available to ``sdebayes simulate --preset``."""


def simulate_sessions(
    scenario: Scenario,
    sessions_per_strategy: int,
    steps: int,
    random_seed: int | np.random.Generator | None = None,
    mean_dt: float | None = None,
    time_step: float | None = None,
) -> pd.DataFrame:
    """Simulate sessions of every strategy: Euler-Maruyama steps, or exact irregular ones.

    Parameters
    ----------
    scenario : Scenario
        True dynamics, e.g. :func:`paper_scenario`.
    sessions_per_strategy : int
        Number of sessions of each strategy.
    steps : int
        Number of refinement rounds per session; each session has ``steps + 1`` versions,
        numbered 0 to ``steps``.
    random_seed : int or numpy.random.Generator, optional
    mean_dt : float, optional
        Without it, every step lasts one unit of time and follows the Euler-Maruyama
        transition, the model sdebayes fits by default. With it, the logged versions are
        separated by random whole numbers of time units, geometrically distributed with mean
        ``mean_dt`` (as if each round were logged with probability ``1 / mean_dt``), and the
        scores follow the exact transition of the linear SDE over each gap; the table then
        has a ``time`` column. Must be at least 1.
    time_step : float, optional
        Log every version exactly ``time_step`` units of time after the previous one and
        simulate the exact transition over that gap (a ``time`` column is added). Cannot be
        combined with ``mean_dt``.

    Returns
    -------
    pandas.DataFrame
        Long trajectory table with columns ``session``, ``strategy``, ``step``, ``time``
        (only with ``mean_dt``) and one column per objective.

    Examples
    --------
    >>> table = simulate_sessions(paper_scenario(), 2, 3, random_seed=1)
    >>> table.shape
    (32, 6)
    """
    if sessions_per_strategy < 1 or steps < 1:
        raise ValueError(
            f"sessions_per_strategy={sessions_per_strategy!r} and steps={steps!r} must be "
            "positive integers"
        )
    if mean_dt is not None and not mean_dt >= 1:
        raise ValueError(f"mean_dt={mean_dt!r} must be at least 1 (one round per version)")
    if time_step is not None and (mean_dt is not None or not time_step > 0):
        raise ValueError(
            f"time_step={time_step!r} must be positive and cannot be combined with mean_dt"
        )
    rng = np.random.default_rng(random_seed)

    frames = []
    for name, truth in scenario.strategies.items():
        gaps = _gaps((sessions_per_strategy, steps), mean_dt, time_step, rng)
        if gaps is None:
            paths = _euler_paths(truth, sessions_per_strategy, steps, rng)
            time = None
        else:
            paths = _exact_paths(truth, gaps.astype(float), rng)
            time = np.concatenate([np.zeros((sessions_per_strategy, 1)), gaps.cumsum(1)], 1)
        frame = pd.DataFrame(paths.reshape(-1, paths.shape[-1]), columns=list(scenario.objectives))
        if time is not None:
            frame.insert(0, "time", time.ravel())
        frame.insert(0, "step", np.tile(np.arange(steps + 1), sessions_per_strategy))
        frame.insert(0, "strategy", name)
        sessions = [f"{name}-{k:04d}" for k in range(sessions_per_strategy)]
        frame.insert(0, "session", np.repeat(sessions, steps + 1))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _gaps(
    shape: tuple[int, int],
    mean_dt: float | None,
    time_step: float | None,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Time between logged versions: fixed, geometric, or ``None`` for Euler steps of one."""
    if time_step is not None:
        return np.full(shape, float(time_step))
    if mean_dt is not None:
        return rng.geometric(1.0 / mean_dt, size=shape)
    return None


def _euler_paths(
    truth: StrategyDynamics, n_sessions: int, steps: int, rng: np.random.Generator
) -> np.ndarray:
    n = len(truth.intercept)
    chol = np.linalg.cholesky(truth.diffusion_cov)
    paths = np.empty((n_sessions, steps + 1, n))
    paths[:, 0] = truth.initial_mean + truth.initial_sd * rng.standard_normal((n_sessions, n))
    for step in range(steps):
        state = paths[:, step]
        noise = rng.standard_normal((n_sessions, n)) @ chol.T
        paths[:, step + 1] = state + state @ truth.drift.T + truth.intercept + noise
    return paths


def _exact_paths(truth: StrategyDynamics, gaps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulate the exact transition over the given gaps (sessions x steps)."""
    n_sessions, steps = gaps.shape
    n = len(truth.intercept)
    intervals, group = np.unique(gaps, return_inverse=True)
    group = group.reshape(gaps.shape)
    transition, shift, covariance = exact_moments(
        truth.drift, truth.intercept, truth.diffusion_cov, intervals
    )
    chol = np.linalg.cholesky(covariance)

    paths = np.empty((n_sessions, steps + 1, n))
    paths[:, 0] = truth.initial_mean + truth.initial_sd * rng.standard_normal((n_sessions, n))
    for step in range(steps):
        k = group[:, step]
        noise = np.einsum("sij,sj->si", chol[k], rng.standard_normal((n_sessions, n)))
        state = paths[:, step]
        paths[:, step + 1] = np.einsum("sij,sj->si", transition[k], state) + shift[k] + noise
    return paths


def true_quantities(
    scenario: Scenario,
    table: pd.DataFrame,
    settings: DynamicsSettings | None = None,
) -> xr.Dataset:
    """Compute the derived quantities of the true parameters on a simulated dataset.

    Interference, :math:`R^2` and the log-likelihood depend on the data, so they are
    evaluated on ``table`` with the true parameters, exactly as the posterior's are, with the
    discretisation :func:`sdebayes.fit.fit` would choose for the table (exact when it has a
    ``time`` column).

    Parameters
    ----------
    scenario : Scenario
    table : pandas.DataFrame
        Data simulated from ``scenario``.
    settings : DynamicsSettings, optional
        Mode thresholds.

    Returns
    -------
    xarray.Dataset
        As :func:`sdebayes.dynamics.derived_quantities`, without sample dimensions.
    """
    trajectories = trajectories_from_frame(table, source="simulation")
    location, scale = standardization(trajectories)
    names = list(scenario.strategies)
    statistics = sufficient_statistics(transitions(trajectories), location, scale, names)
    discretization = choose_discretization(trajectories, statistics)

    truths = [scenario.strategies[name] for name in names]
    return dynamics.derived_quantities(
        np.stack([truth.drift for truth in truths]),
        np.stack([truth.intercept for truth in truths]),
        np.stack([truth.diffusion_cov for truth in truths]),
        statistics,
        objective_bounds(trajectories),
        settings,
        dt=typical_step(statistics),
        discretization=discretization,
        sample_dims=(),
    )


def truth_document(
    scenario: Scenario, table: pd.DataFrame, random_seed: int | None = None
) -> dict[str, Any]:
    """Describe the truth behind a simulated table as plain JSON-ready numbers.

    Parameters
    ----------
    scenario : Scenario
        The scenario that produced ``table``.
    table : pandas.DataFrame
        Data simulated from ``scenario``; the data-dependent quantities (interference,
        :math:`R^2`, log-likelihood) are evaluated on it.
    random_seed : int, optional
        Seed of the simulation, recorded for reproduction.

    Returns
    -------
    dict
        ``{"scenario", "seed", "objectives", "modes", "strategies": {NAME: {...}}}``, each
        strategy holding the same quantities as the ``strategies`` block of
        ``sdebayes sample --json`` (as plain numbers, ``mode`` as its name) plus the true
        ``diffusion_cov``, ``initial_mean`` and ``initial_sd``.
    """
    quantities = true_quantities(scenario, table)
    strategies = {}
    for name in scenario.strategies:
        values = quantities.sel(strategy=name)
        entry = {key: _plain(values[key].to_numpy()) for key in values.data_vars}
        entry["mode"] = dynamics.MODES[int(values["mode"])]
        entry["pareto_optimal"] = bool(values["pareto_optimal"])
        truth = scenario.strategies[name]
        entry["initial_mean"] = _plain(truth.initial_mean)
        entry["initial_sd"] = _plain(truth.initial_sd)
        strategies[name] = entry
    return {
        "scenario": scenario.name,
        "seed": random_seed,
        "objectives": list(scenario.objectives),
        "modes": list(dynamics.MODES),
        "strategies": strategies,
    }


def _plain(values: np.ndarray) -> Any:
    """Numbers and nested lists rounded to 10 significant digits (NaN becomes None)."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        value = float(array)
        return None if not np.isfinite(value) else float(f"{value:.10g}")
    return [_plain(item) for item in array]
