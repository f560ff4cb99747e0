r"""Simulation-based calibration (SBC) of the fitted model and sampler.

For each simulation :math:`i`, SBC draws parameters :math:`\theta_i` from the model's own
priors, simulates a dataset :math:`y_i` from them, fits the model to :math:`y_i` and records
the rank of every true quantity :math:`f(\theta_i, y_i)` among :math:`L` thinned posterior
draws. If the sampler draws from the exact posterior, each rank is uniform on
:math:`\{0, \dots, L\}` ([1]_, [2]_): a skewed rank distribution reveals biased inference, a
U shape or a hump intervals that are too narrow or too wide.

What is simulated. The fitted model standardises the objectives with the data's mean and
standard deviation and centres each strategy's states at its data mean, so its prior depends
on the data and cannot be sampled before the data exist. SBC therefore works directly in
standardised units: the drift :math:`A_s`, the intercept :math:`b_s` (the ``c_s`` prior of
the model file, which is the intercept when states are not centred) and the diffusion factor
:math:`L_s` come from :func:`pymc.sample_prior_predictive` on the model
:func:`sdebayes.model.build_model` builds; every session starts from
:math:`x_0 \sim \mathcal{N}(0, I)` and takes Euler-Maruyama steps with :math:`\Delta t = 1`;
and the fit uses ``standardize=False, centre_states=False``, under which the fitted model is
exactly the generative one. The likelihood conditions on the first version of each session,
so the distribution of :math:`x_0` is free. SBC thereby checks the priors' implementation,
the sufficient-statistics likelihood, the sampler and the derived-quantity code; the
standardisation is a separate, deterministic change of units (``docs/validation.md``).

Prior draws whose trajectories explode are kept: they are prior mass like any other. Their
largest absolute score is stored per simulation, so their ranks can be inspected separately;
selecting simulations by a function of the data alone keeps the ranks uniform, because given
the data the true parameters and the posterior draws are exchangeable.

Quantities are named ``variable[label,...]``: the strategy by its name, the entry of the
hierarchical spread by ``diagonal``/``off_diagonal``, every other dimension by its integer
position, e.g. ``drift[AI,0,1]``, ``convergence_rate[EF]`` and ``equilibrium[SF,2]``.

A run writes one JSON record per finished simulation into a work directory beside the
output (``RESULT.nc.work``), skips finished simulations when restarted with the same
settings, and assembles the result file atomically at the end.

References
----------
.. [1] Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018). Validating
   Bayesian inference algorithms with simulation-based calibration. arXiv:1804.06788.
.. [2] Modrák, M., Moon, A. H., Kim, S., Bürkner, P., Huurre, N., Faltejsková, K., Gelman, A.
   and Vehtari, A. (2023). Simulation-based calibration checking for Bayesian computation:
   the choice of test quantities shapes sensitivity. Bayesian Analysis.
.. [3] Säilynoja, T., Bürkner, P.-C. and Vehtari, A. (2022). Graphical test for discrete
   uniformity and its applications in goodness-of-fit evaluation and multiple sample
   comparison. Statistics and Computing 32, 32.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from sdebayes import __version__
from sdebayes._io import atomic_path, check_output_path
from sdebayes._logging import quieted
from sdebayes.data import objective_bounds, trajectories_from_frame, transitions
from sdebayes.dynamics import derived_quantities
from sdebayes.exceptions import DiagnosticWarning, OutputError, SdebayesError
from sdebayes.specs import ModelSpec
from sdebayes.sufficient_stats import sufficient_statistics

__all__ = [
    "DEFAULT_OBJECTIVES",
    "DEFAULT_STRATEGIES",
    "EXPLOSION_THRESHOLD",
    "SBC_VARIABLES",
    "SBCSettings",
    "assemble_sbc",
    "check_plot_path",
    "load_sbc",
    "plot_sbc",
    "prior_parameters",
    "quantity_table",
    "run_sbc",
    "run_simulation",
    "save_sbc_plot",
    "sbc_uniformity",
    "simulate_prior_dataset",
    "summarize_sbc",
    "true_values",
    "work_directory",
]

logger = logging.getLogger(__name__)

DEFAULT_STRATEGIES = ("EF", "SF", "FF", "AI")
"""Strategy names of simulated datasets: those of the bundled data, so fits share its model."""

DEFAULT_OBJECTIVES = ("security", "efficiency", "functionality")
"""Objective names of simulated datasets."""

SBC_VARIABLES = (
    "drift",
    "intercept",
    "diffusion_sd",
    "diffusion_correlation",
    "drift_population",
    "drift_spread",
    "eigenvalues_real",
    "convergence_rate",
    "discrete_stability",
    "equilibrium",
    "loglik",
)
"""Posterior variables whose ranks SBC records (those the model has); for
``diffusion_correlation`` only the entries above the diagonal."""

EXPLOSION_THRESHOLD = 10.0
"""A simulated dataset whose largest absolute score exceeds this many units (the starting
states have standard deviation 1) counts as exploding in the reports."""

_BLOCK = 50  # prior draws per seeded block: simulation i uses draw i % 50 of block i // 50
_SAMPLE_DIMS = ("chain", "draw")


@dataclass(frozen=True)
class SBCSettings:
    """Everything that defines an SBC run; two runs with equal settings give equal ranks.

    Parameters
    ----------
    spec : ModelSpec
        Model whose priors generate the data and which is fitted.
    simulations : int
        Number of simulated datasets.
    sessions_per_strategy : int
        Sessions of every strategy in each dataset.
    steps : int
        Transitions per session (each session has ``steps + 1`` versions).
    seed : int, default=0
        Master seed; simulation ``i`` derives its own seeds from ``(seed, i)``, so results do
        not depend on the order, the number of workers or interruptions.
    strategies : tuple of str, default=DEFAULT_STRATEGIES
    objectives : tuple of str, default=DEFAULT_OBJECTIVES
    draws : int, default=1000
        Posterior draws per chain.
    tune : int, default=1000
        Tuning iterations per chain.
    chains : int, default=2
    thin_to : int, default=100
        Posterior draws kept, evenly spaced within each chain, to rank the truth among
        (``thin_to // chains`` per chain), so that they are nearly independent.
    """

    spec: ModelSpec
    simulations: int
    sessions_per_strategy: int
    steps: int
    seed: int = 0
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    thin_to: int = 100

    def __post_init__(self) -> None:
        for name in ("simulations", "sessions_per_strategy", "steps", "draws", "tune", "chains"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if not 2 <= self.thin_to <= self.chains * self.draws or self.thin_to < self.chains:
            raise ValueError(
                f"thin_to={self.thin_to!r} must lie between max(2, chains={self.chains}) and "
                f"chains x draws = {self.chains * self.draws}; pass e.g. thin_to=100"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"seed={self.seed!r} must be a non-negative integer")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed!r} must be a non-negative integer")
        for name in ("strategies", "objectives"):
            labels = getattr(self, name)
            if len(labels) < 1 or len(set(labels)) != len(labels):
                raise ValueError(f"{name}={labels!r} must be distinct names, at least one")

    @property
    def kept_per_chain(self) -> int:
        """Thinned draws kept from each chain."""
        return self.thin_to // self.chains

    def identity(self) -> dict[str, Any]:
        """Return the settings that must match for a run to resume (all but ``simulations``)."""
        values = {
            key: value for key, value in asdict(self).items() if key not in ("spec", "simulations")
        }
        values["strategies"] = list(self.strategies)
        values["objectives"] = list(self.objectives)
        values["spec"] = self.spec.to_dict()
        return values


def work_directory(output: str | Path) -> Path:
    """Return the directory beside ``output`` that holds one record per finished simulation."""
    output = Path(output)
    return output.with_name(output.name + ".work")


@functools.lru_cache(maxsize=8)
def _placeholder_statistics(strategies: tuple[str, ...], objectives: tuple[str, ...]):
    """Statistics of the right shape for :func:`build_model` (their values are not used)."""
    rows = [
        [f"{name}-0", name, step, *(float(step + k) for k in range(len(objectives)))]
        for name in strategies
        for step in range(2)
    ]
    frame = pd.DataFrame(rows, columns=["session", "strategy", "step", *objectives])
    trajectories = trajectories_from_frame(frame, source="<placeholder>")
    zeros, ones = np.zeros(len(objectives)), np.ones(len(objectives))
    return sufficient_statistics(
        transitions(trajectories), zeros, ones, list(strategies), centre_states=False
    )


@functools.lru_cache(maxsize=4)
def _prior_block(
    spec: ModelSpec, strategies: tuple[str, ...], objectives: tuple[str, ...], seed: int, block: int
) -> xr.Dataset:
    import pymc as pm

    from sdebayes.model import build_model

    model = build_model(_placeholder_statistics(strategies, objectives), spec, "euler")
    names = [variable.name for variable in (*model.free_RVs, *model.deterministics)]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, block)))
    with warnings.catch_warnings():
        # PyMC notes that the likelihood potential plays no part in prior draws.
        warnings.filterwarnings("ignore", message=".*Potentials.*", category=UserWarning)
        with model, quieted("pymc"):
            prior = pm.sample_prior_predictive(draws=_BLOCK, var_names=names, random_seed=rng)
    return prior["prior"].to_dataset().isel(chain=0).load()


def prior_parameters(settings: SBCSettings, index: int) -> xr.Dataset:
    """Draw the parameters of simulation ``index`` from the model's priors.

    Parameters
    ----------
    settings : SBCSettings
    index : int
        Simulation number, from 0.

    Returns
    -------
    xarray.Dataset
        One prior draw of every free and deterministic variable of the model
        (``drift_standardised``, ``centre_drift``, ``diffusion_chol``, ``diffusion_sd``, and
        the hyperparameters of the pooling), with the strategy names of ``settings``.
    """
    block = _prior_block(
        settings.spec, settings.strategies, settings.objectives, int(settings.seed), index // _BLOCK
    )
    return block.isel(draw=index % _BLOCK, drop=True)


def simulate_prior_dataset(
    parameters: xr.Dataset,
    sessions_per_strategy: int,
    steps: int,
    random_seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    r"""Simulate sessions from one prior draw, in standardised units.

    Every session starts from :math:`x_0 \sim \mathcal{N}(0, I)` and follows
    :math:`x_{t+1} = x_t + A_s x_t + b_s + L_s \varepsilon_t` with
    :math:`\varepsilon_t \sim \mathcal{N}(0, I)`, the model's likelihood with
    ``standardize=False, centre_states=False``. Nothing is clipped or rounded.

    Parameters
    ----------
    parameters : xarray.Dataset
        As returned by :func:`prior_parameters`.
    sessions_per_strategy, steps : int
    random_seed : int or numpy.random.Generator, optional

    Returns
    -------
    pandas.DataFrame
        Columns ``session``, ``strategy``, ``step`` and one per objective.
    """
    rng = np.random.default_rng(random_seed)
    strategies = parameters["strategy"].to_numpy()
    objectives = parameters["objective"].to_numpy()
    drift = parameters["drift_standardised"].transpose("strategy", "objective", "source").values
    intercept = parameters["centre_drift"].transpose("strategy", "objective").values
    chol = parameters["diffusion_chol"].transpose("strategy", "objective", "other").values
    n_strategies, n = intercept.shape

    paths = np.empty((n_strategies, sessions_per_strategy, steps + 1, n))
    paths[:, :, 0] = rng.standard_normal((n_strategies, sessions_per_strategy, n))
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(steps):
            state = paths[:, :, step]
            noise = np.einsum(
                "sij,skj->ski", chol, rng.standard_normal((n_strategies, sessions_per_strategy, n))
            )
            mean = np.einsum("sij,skj->ski", drift, state) + intercept[:, None, :]
            paths[:, :, step + 1] = state + mean + noise

    frame = pd.DataFrame(paths.reshape(-1, n), columns=[str(name) for name in objectives])
    frame.insert(0, "step", np.tile(np.arange(steps + 1), n_strategies * sessions_per_strategy))
    labels = np.repeat([str(name) for name in strategies], sessions_per_strategy * (steps + 1))
    sessions = [f"{name}-{k:04d}" for name in strategies for k in range(sessions_per_strategy)]
    frame.insert(0, "strategy", labels)
    frame.insert(0, "session", np.repeat(sessions, steps + 1))
    return frame


def true_values(parameters: xr.Dataset, trajectories: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """Every SBC quantity of the true parameters, evaluated on the simulated data as a fit does.

    Parameters
    ----------
    parameters : xarray.Dataset
        As returned by :func:`prior_parameters`.
    trajectories : xarray.Dataset
        The data simulated from them.
    spec : ModelSpec
        For the mode thresholds (the modes themselves take no part in SBC).

    Returns
    -------
    xarray.Dataset
        The variables of :data:`SBC_VARIABLES` that the model has, without sample dimensions.
    """
    strategies = [str(name) for name in parameters["strategy"].to_numpy()]
    n = parameters.sizes["objective"]
    statistics = sufficient_statistics(
        transitions(trajectories), np.zeros(n), np.ones(n), strategies, centre_states=False
    )
    chol = parameters["diffusion_chol"].transpose("strategy", "objective", "other").values
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        derived = derived_quantities(
            parameters["drift_standardised"].transpose("strategy", "objective", "source").values,
            parameters["centre_drift"].transpose("strategy", "objective").values,
            chol @ np.swapaxes(chol, -1, -2),
            statistics,
            objective_bounds(trajectories),
            spec.dynamics,
            dt=1.0,
            discretization="euler",
            sample_dims=(),
        )
    extra = [
        name for name in ("diffusion_sd", "drift_population", "drift_spread") if name in parameters
    ]
    return xr.merge([derived, parameters[extra]], join="exact", compat="no_conflicts")


def quantity_table(
    dataset: xr.Dataset, sample_dims: Sequence[str] = ()
) -> tuple[list[str], np.ndarray]:
    """Flatten the SBC variables of a dataset into named scalar quantities.

    Parameters
    ----------
    dataset : xarray.Dataset
        A posterior (with ``sample_dims``) or the output of :func:`true_values`.
    sample_dims : sequence of str, default=()
        Dimensions kept in front of the quantity axis.

    Returns
    -------
    names : list of str
        ``variable[label,...]`` in the order of :data:`SBC_VARIABLES`.
    values : numpy.ndarray, shape (*sample, quantity)
    """
    names: list[str] = []
    columns: list[np.ndarray] = []
    for variable in SBC_VARIABLES:
        if variable not in dataset:
            continue
        array = dataset[variable]
        dims = [dim for dim in array.dims if dim not in sample_dims]
        values = array.transpose(*sample_dims, *dims).to_numpy().astype(float)
        for index in np.ndindex(*(array.sizes[dim] for dim in dims)):
            if variable == "diffusion_correlation" and not index[-2] < index[-1]:
                continue
            labels = [
                str(array[dim].to_numpy()[k]) if dim in ("strategy", "entry") else str(k)
                for dim, k in zip(dims, index, strict=True)
            ]
            names.append(f"{variable}[{','.join(labels)}]" if labels else variable)
            columns.append(values[(..., *index)])
    shape = tuple(dataset.sizes[dim] for dim in sample_dims)
    return names, np.stack(columns, axis=-1) if columns else np.empty((*shape, 0))


def _seed(settings: SBCSettings, purpose: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(int(settings.seed), spawn_key=(purpose, index))


def _ranks(
    truth: np.ndarray, draws: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank each true value among the finite draws; ties broken at random; jittered PIT."""
    finite = np.isfinite(draws)
    used = finite.sum(axis=0)
    with np.errstate(invalid="ignore"):
        less = ((draws < truth) & finite).sum(axis=0)
        equal = ((draws == truth) & finite).sum(axis=0)
    rank = less + np.floor(rng.uniform(size=truth.shape) * (equal + 1))
    pit = (rank + rng.uniform(size=truth.shape)) / (used + 1)
    missing = ~np.isfinite(truth) | (used == 0)
    return np.where(missing, np.nan, rank), used, np.where(missing, np.nan, pit)


def run_simulation(settings: SBCSettings, index: int) -> dict[str, Any]:
    """Simulate one dataset from the prior, fit it and rank the truth.

    Parameters
    ----------
    settings : SBCSettings
    index : int
        Simulation number, from 0.

    Returns
    -------
    dict
        A JSON-ready record: ``index``, ``status`` (``"ok"`` or ``"failed"`` with ``error``),
        ``names``, ``truth``, and for a finished fit ``rank``, ``n_draws`` (finite thinned
        draws), ``pit`` (rank with uniform jitter over ``n_draws + 1``), ``posterior_mean``,
        ``posterior_sd``, ``diagnostics``, ``max_abs_score`` and
        ``max_abs_score_by_strategy``.
    """
    from sdebayes.fit import fit

    started = time.perf_counter()
    parameters = prior_parameters(settings, index)
    frame = simulate_prior_dataset(
        parameters,
        settings.sessions_per_strategy,
        settings.steps,
        np.random.default_rng(_seed(settings, 1, index)),
    )
    scores = frame[list(settings.objectives)].to_numpy()
    finite = bool(np.isfinite(scores).all())
    largest = np.abs(scores).reshape(len(settings.strategies), -1).max(axis=1)
    record: dict[str, Any] = {
        "index": index,
        "max_abs_score": float(largest.max()) if finite else None,
        "max_abs_score_by_strategy": _json_list(largest),
    }
    if not finite:
        return {**record, "status": "failed", "error": "simulated scores overflowed", "names": []}

    trajectories = trajectories_from_frame(frame, source=f"<sbc simulation {index}>")
    names, truth = quantity_table(true_values(parameters, trajectories, settings.spec))
    record.update(names=names, truth=_json_list(truth))
    fit_seed = int(_seed(settings, 2, index).generate_state(1)[0] % 2**31)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DiagnosticWarning)
            tree = fit(
                trajectories,
                settings.spec,
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                random_seed=fit_seed,
                progressbar=False,
                discretization="euler",
                standardize=False,
                centre_states=False,
            )
    except Exception as err:  # a failed fit is a result to report, not a reason to stop
        logger.warning("simulation %d: the fit failed (%s: %s)", index, type(err).__name__, err)
        record.update(status="failed", error=f"{type(err).__name__}: {err}")
        return record

    posterior = tree["posterior"].to_dataset()
    posterior_names, draws = quantity_table(posterior, _SAMPLE_DIMS)
    if posterior_names != names:
        raise RuntimeError(f"simulation {index}: posterior and truth quantities differ")
    keep = np.linspace(0, settings.draws - 1, settings.kept_per_chain).round().astype(int)
    thinned = draws[:, keep].reshape(-1, len(names))
    rank, used, pit = _ranks(truth, thinned, np.random.default_rng(_seed(settings, 3, index)))
    flat = draws.reshape(-1, len(names))
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (singular drift)
        mean, sd = np.nanmean(flat, axis=0), np.nanstd(flat, axis=0)
    record.update(
        status="ok",
        fit_seed=fit_seed,
        rank=_json_list(rank),
        n_draws=[int(value) for value in used],
        pit=_json_list(pit),
        posterior_mean=_json_list(mean),
        posterior_sd=_json_list(sd),
        diagnostics=json.loads(tree.attrs["diagnostics"]),
        seconds=round(time.perf_counter() - started, 3),
    )
    return record


def _json_list(values: np.ndarray) -> list[float | None]:
    return [float(value) if np.isfinite(value) else None for value in np.asarray(values, float)]


def _record_path(work: Path, index: int) -> Path:
    return work / f"simulation-{index:05d}.json"


def _run_and_save(settings: SBCSettings, index: int, work: str) -> dict[str, Any]:
    record = run_simulation(settings, index)
    with atomic_path(_record_path(Path(work), index)) as temporary:
        temporary.write_text(json.dumps(record, allow_nan=False), encoding="utf-8")
    return {key: record.get(key) for key in ("index", "status", "seconds", "error")}


_WORKER_LIMITS: list[Any] = []


def _init_worker() -> None:
    """Each worker process: BLAS on one thread (as the command line runs), quiet fit logs."""
    from threadpoolctl import threadpool_limits

    _WORKER_LIMITS.append(threadpool_limits(limits=1, user_api="blas"))
    logging.getLogger("sdebayes").setLevel(logging.WARNING)


def _prepare_work_directory(settings: SBCSettings, output: Path) -> Path:
    work = work_directory(output)
    work.mkdir(exist_ok=True)
    manifest = work / "settings.json"
    identity = settings.identity()
    if manifest.is_file():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        if saved.get("settings") != json.loads(json.dumps(identity)):
            different = sorted(
                key
                for key in set(identity) | set(saved.get("settings", {}))
                if saved.get("settings", {}).get(key) != json.loads(json.dumps(identity.get(key)))
            )
            raise SdebayesError(
                f"{work} holds simulations run with other settings (differing: "
                f"{', '.join(different)}); pass another --output or delete {work} to start over"
            )
    else:
        document = {"sdebayes_version": __version__, "settings": identity}
        with atomic_path(manifest) as temporary:
            temporary.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return work


def run_sbc(
    settings: SBCSettings,
    output: str | Path,
    workers: int = 1,
    on_progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> xr.Dataset:
    """Run (or resume) an SBC study and write its result file.

    Parameters
    ----------
    settings : SBCSettings
    output : str or Path
        NetCDF result file, written atomically once every simulation has finished. Finished
        simulations are kept in :func:`work_directory` ``(output)`` and skipped on a restart
        with the same settings (``simulations`` may grow).
    workers : int, default=1
        Processes fitting simulations at the same time. Each compiles the model once (about
        30 s with warm caches). nutpie runs the chains of one fit in parallel threads, so on a
        2-core machine one worker with two chains already keeps both cores busy.
    on_progress : callable, optional
        Called as ``on_progress(done, total, summary)`` after each simulation.

    Returns
    -------
    xarray.Dataset
        As returned by :func:`assemble_sbc`.

    Raises
    ------
    SdebayesError
        If the work directory holds simulations run with other settings.
    OutputError
        If ``output`` cannot be written.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} must be a positive integer")
    output = check_output_path(output)
    work = _prepare_work_directory(settings, output)
    todo = [i for i in range(settings.simulations) if not _record_path(work, i).is_file()]
    done = settings.simulations - len(todo)
    if done:
        logger.info(
            "resuming: %d of %d simulations already in %s", done, settings.simulations, work
        )

    if workers == 1 or len(todo) <= 1:
        for index in todo:
            summary = _run_and_save(settings, index, str(work))
            done += 1
            if on_progress is not None:
                on_progress(done, settings.simulations, summary)
    else:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(todo)),
            mp_context=get_context("spawn"),
            initializer=_init_worker,
        ) as pool:
            futures = [pool.submit(_run_and_save, settings, index, str(work)) for index in todo]
            try:
                for future in as_completed(futures):
                    summary = future.result()
                    done += 1
                    if on_progress is not None:
                        on_progress(done, settings.simulations, summary)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    result = assemble_sbc(work, settings)
    with atomic_path(output) as temporary:
        encoding = {name: {"zlib": True, "complevel": 4} for name in result.data_vars}
        result.to_netcdf(temporary, engine="h5netcdf", encoding=encoding)
    logger.info("wrote %s", output)
    return result


def assemble_sbc(work: str | Path, settings: SBCSettings) -> xr.Dataset:
    """Gather the records of simulations ``0 .. settings.simulations - 1`` into one dataset.

    Parameters
    ----------
    work : str or Path
        Work directory written by :func:`run_sbc`.
    settings : SBCSettings

    Returns
    -------
    xarray.Dataset
        Along ``simulation`` and ``quantity``: ``rank``, ``n_draws``, ``pit``, ``truth``,
        ``posterior_mean`` and ``posterior_sd`` (NaN for failed fits); per simulation
        ``ok``, ``max_abs_score``, ``max_rhat``, ``min_ess_bulk``, ``divergences`` and
        ``seconds``, and ``max_abs_score_by_strategy`` along ``strategy``. ``attrs`` hold
        the settings, the model TOML, the uniformity results of :func:`sbc_uniformity` for
        all simulations and for those that did not explode, and the failed fits' errors.

    Raises
    ------
    SdebayesError
        If a record is missing or no fit succeeded.
    """
    work = Path(work)
    records = []
    for index in range(settings.simulations):
        path = _record_path(work, index)
        if not path.is_file():
            raise SdebayesError(f"{path}: missing; run the SBC command again to resume")
        records.append(json.loads(path.read_text(encoding="utf-8")))
    finished = [record for record in records if record["status"] == "ok"]
    if not finished:
        raise SdebayesError(f"no SBC fit succeeded in {work}; see the records' errors")
    names = finished[0]["names"]

    def table(key: str) -> np.ndarray:
        values = np.full((len(records), len(names)), np.nan)
        for row, record in enumerate(records):
            if record["status"] == "ok":
                values[row] = np.array(record[key], dtype=float)
        return values

    def per_fit(key: str) -> np.ndarray:
        return np.array(
            [
                np.nan if record["status"] != "ok" else float(record["diagnostics"][key])
                for record in records
            ]
        )

    dims = ("simulation", "quantity")
    result = xr.Dataset(
        {
            "rank": (dims, table("rank")),
            "n_draws": (dims, table("n_draws")),
            "pit": (dims, table("pit")),
            "truth": (dims, table("truth")),
            "posterior_mean": (dims, table("posterior_mean")),
            "posterior_sd": (dims, table("posterior_sd")),
            "ok": ("simulation", np.array([record["status"] == "ok" for record in records])),
            "max_abs_score": (
                "simulation",
                np.array(
                    [np.nan if r["max_abs_score"] is None else r["max_abs_score"] for r in records]
                ),
            ),
            "max_abs_score_by_strategy": (
                ("simulation", "strategy"),
                np.array(
                    [
                        [np.nan if v is None else v for v in r["max_abs_score_by_strategy"]]
                        if "max_abs_score_by_strategy" in r
                        else [np.nan] * len(settings.strategies)
                        for r in records
                    ],
                    dtype=float,
                ),
            ),
            "max_rhat": ("simulation", per_fit("max_rhat")),
            "min_ess_bulk": ("simulation", per_fit("min_ess_bulk")),
            "divergences": ("simulation", per_fit("divergences")),
            "seconds": (
                "simulation",
                np.array([record.get("seconds") or np.nan for record in records], dtype=float),
            ),
        },
        coords={
            "simulation": np.arange(len(records)),
            "quantity": np.array(names, dtype=str),
            "strategy": np.array(settings.strategies, dtype=str),
        },
    )
    calm = result["max_abs_score"].to_numpy() <= EXPLOSION_THRESHOLD
    result.attrs.update(
        sdebayes_version=__version__,
        settings=json.dumps(settings.identity() | {"simulations": settings.simulations}),
        model_name=settings.spec.name,
        model_spec=settings.spec.source or json.dumps(settings.spec.to_dict()),
        thinned_draws=settings.kept_per_chain * settings.chains,
        explosion_threshold=EXPLOSION_THRESHOLD,
        uniformity=json.dumps(sbc_uniformity(result)),
        uniformity_non_exploding=json.dumps(sbc_uniformity(result, calm)),
        failures=json.dumps(
            {str(r["index"]): r.get("error", "") for r in records if r["status"] != "ok"}
        ),
    )
    return result


@functools.lru_cache(maxsize=64)
def _simultaneous_band(n: int, probability: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from arviz_stats.ecdf_utils import ecdf_pit

    points, _, lower, upper = ecdf_pit(
        np.linspace(0, 1, n), probability, 1000, rng=np.random.default_rng(214)
    )
    return points, lower, upper


def sbc_uniformity(
    result: xr.Dataset,
    simulations: np.ndarray | None = None,
    envelope_prob: float | None = None,
) -> dict[str, Any]:
    """Test the ranks of every quantity for uniformity.

    Parameters
    ----------
    result : xarray.Dataset
        As returned by :func:`assemble_sbc` (its ``pit`` variable is used).
    simulations : numpy.ndarray of bool, optional
        Which simulations to use. Default: all finished ones.
    envelope_prob : float, optional
        Probability of the simultaneous ECDF band. Default: ArviZ's ``stats.envelope_prob``
        (0.99).

    Returns
    -------
    dict
        ``quantities``: per name ``uniformity_pvalue`` (the ``pot_c`` test of
        ``arviz_stats``), ``outside_band`` (whether the rank ECDF leaves the simultaneous
        band of [3]_ anywhere), ``n`` (ranks used), ``mean_pit`` and the coverage of the
        central 50% and 90% posterior intervals (``coverage_50``, ``coverage_90``);
        ``summary``: counts over all quantities and what they would be if every rank were
        uniform.

    Notes
    -----
    The jittered PIT ``(rank + U) / (L + 1)`` is exactly uniform on (0, 1) under correct
    calibration. ``pot_c`` combines pointwise order-statistic tests by the truncated Cauchy
    method; measured on 4,000 sets of 200 uniform values it rejects at nominal 5% in 6.4% of
    sets and at 1% in 1.3%, and its p-value never exceeds 0.5. Quantities are not independent
    (e.g. a drift entry and the eigenvalues), so counts across quantities are a guide only.
    """
    from arviz_base import rcParams

    probability = float(envelope_prob or rcParams["stats.envelope_prob"])
    pit = result["pit"]
    if simulations is not None:
        pit = pit.isel(simulation=np.asarray(simulations, dtype=bool))

    quantities: dict[str, dict[str, Any]] = {}
    for name in pit["quantity"].to_numpy():
        values = pit.sel(quantity=name).to_numpy()
        values = values[np.isfinite(values)]
        quantities[str(name)] = _uniformity(values, probability)

    pvalues = np.array([entry["uniformity_pvalue"] for entry in quantities.values()], dtype=float)
    pvalues = pvalues[np.isfinite(pvalues)]
    outside = sum(bool(entry["outside_band"]) for entry in quantities.values())
    smallest = min(quantities, key=lambda key: _pvalue_or_one(quantities[key]))
    count = len(quantities)
    summary = {
        "quantities": count,
        "simulations": int(pit.sizes["simulation"]),
        "envelope_prob": probability,
        "outside_band": outside,
        "expected_outside_band": round(count * (1 - probability), 2),
        "pvalue_below_0.05": int(np.sum(pvalues < 0.05)),
        "pvalue_below_0.01": int(np.sum(pvalues < 0.01)),
        "expected_below_0.05": round(0.064 * count, 1),
        "min_pvalue": quantities[smallest]["uniformity_pvalue"],
        "min_pvalue_quantity": smallest,
        "bonferroni_min_pvalue": _rounded(min(1.0, count * (pvalues.min() if pvalues.size else 1))),
    }
    return {"quantities": quantities, "summary": summary}


def _pvalue_or_one(entry: dict[str, Any]) -> float:
    value = entry["uniformity_pvalue"]
    return 1.0 if value is None else float(value)


def _uniformity(values: np.ndarray, probability: float) -> dict[str, Any]:
    if values.size < 2:
        return {"uniformity_pvalue": None, "outside_band": False, "n": int(values.size)}
    from arviz_stats.ecdf_utils import compute_ecdf

    pvalue, _, _ = xr.DataArray(values, dims="simulation").azstats.uniformity_test(
        dim="simulation", method="pot_c"
    )
    points, lower, upper = _simultaneous_band(values.size, probability)
    ecdf = compute_ecdf(values, points)
    outside = bool(np.any((ecdf < lower - 1e-12) | (ecdf > upper + 1e-12)))
    distance = np.abs(values - 0.5)
    return {
        "uniformity_pvalue": _rounded(float(pvalue)),
        "outside_band": outside,
        "n": int(values.size),
        "mean_pit": _rounded(float(values.mean())),
        "coverage_50": _rounded(float(np.mean(distance < 0.25))),
        "coverage_90": _rounded(float(np.mean(distance < 0.45))),
    }


def _rounded(value: float) -> float | None:
    return None if not math.isfinite(value) else float(f"{value:.4g}")


def plot_sbc(
    result: xr.Dataset,
    quantities: Sequence[str] | None = None,
    envelope_prob: float | None = None,
    simulations: np.ndarray | None = None,
    col_wrap: int = 6,
) -> Any:
    """Plot the rank ECDF difference of each quantity with a simultaneous band.

    Drawn with :func:`arviz_plots.plot_ecdf_pit` (the ``pot_c`` p-value in each panel and
    the points that drive a departure highlighted); the grey band is the simultaneous
    ``envelope_prob`` band of [3]_ for that many ranks, inside which the whole ECDF
    difference of a calibrated quantity stays with that probability.

    Parameters
    ----------
    result : xarray.Dataset
        As returned by :func:`assemble_sbc`.
    quantities : sequence of str, optional
        Names to draw, in this order. Default: every quantity.
    envelope_prob : float, optional
        Default: ArviZ's ``stats.envelope_prob`` (0.99).
    simulations : numpy.ndarray of bool, optional
        Which simulations to use. Default: all finished ones.
    col_wrap : int, default=6
        Panels per row.

    Returns
    -------
    arviz_plots.PlotCollection
        Save it with ``.savefig(path)``.
    """
    from arviz_base import rc_context, rcParams
    from arviz_plots import plot_ecdf_pit
    from arviz_plots.visuals import fill_between_y

    probability = float(envelope_prob or rcParams["stats.envelope_prob"])
    ok = result["ok"].to_numpy().astype(bool)
    if simulations is not None:
        ok &= np.asarray(simulations, dtype=bool)
    pit = result["pit"].isel(simulation=ok)
    names = list(quantities) if quantities is not None else list(pit["quantity"].to_numpy())
    unknown = [name for name in names if name not in set(pit["quantity"].to_numpy())]
    if unknown:
        raise ValueError(f"unknown quantities {unknown!r}; the result has e.g. {names[:3]!r}")
    dataset = xr.Dataset(
        {name: ("simulation", pit.sel(quantity=name).to_numpy()) for name in names}
    ).dropna("simulation")
    n = dataset.sizes["simulation"]

    rows = math.ceil(len(names) / col_wrap)
    with rc_context({"plot.max_subplots": max(len(names), 1)}):
        collection = plot_ecdf_pit(
            xr.DataTree.from_dict({"prior_sbc": dataset}),
            sample_dims=["simulation"],
            method="pot_c",
            envelope_prob=probability,
            backend="matplotlib",
            col_wrap=col_wrap,
            visuals={"xlabel": False},
            figure_kwargs={
                "figsize": (2.6 * min(col_wrap, len(names)), 2.3 * rows),
                "layout": "constrained",
            },
        )
    points, lower, upper = _simultaneous_band(n, probability)
    collection.map(
        fill_between_y,
        "simultaneous_band",
        data=dataset,
        x=points,
        y_bottom=lower - points,
        y_top=upper - points,
        step=True,
        color="B1",
        alpha=0.15,
        ignore_aes="all",
    )
    return collection


def check_plot_path(
    path: str | Path, option: str = "--plot", reads: Sequence[str | Path | None] = ()
) -> Path:
    """Fail early if ``path`` cannot be written or matplotlib cannot write its format.

    Parameters
    ----------
    path : str or Path
        Planned figure file; the format follows the suffix (PNG without one).
    option : str, default="--plot"
        Name of the option that gave the path, used in error messages.
    reads : sequence of str or Path, optional
        Other files of the command, which the figure must not overwrite (see
        :func:`sdebayes._io.check_output_path`).

    Returns
    -------
    Path

    Raises
    ------
    OutputError
        If the suffix names no format matplotlib writes, or the path cannot be written.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    path = check_output_path(path, option=option, reads=reads)
    suffix = path.suffix.lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in formats:
        raise OutputError(
            f"{option} {path}: matplotlib cannot write .{suffix} files; use one of "
            + ", ".join(f".{name}" for name in sorted(formats))
        )
    return path


def save_sbc_plot(collection: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write a figure from :func:`plot_sbc` atomically; the format follows the file suffix."""
    import matplotlib.pyplot as plt

    path = check_plot_path(path)
    figure = collection.get_viz("figure")
    with atomic_path(path) as temporary:
        collection.savefig(temporary, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    if figure is not None:
        plt.close(figure)
    return path


def summarize_sbc(result: xr.Dataset) -> dict[str, Any]:
    """Summarise an SBC result as one JSON-ready document.

    Parameters
    ----------
    result : xarray.Dataset
        As returned by :func:`assemble_sbc` or read back from its file.

    Returns
    -------
    dict
        ``schema`` (``"sdebayes.sbc/1"``), ``simulations``, ``completed``, ``failed``,
        ``model``, ``settings``, ``fits`` (how many fits diverged or missed the R-hat and
        ESS thresholds, and their median time), ``exploding`` (datasets whose largest
        absolute score exceeded :data:`EXPLOSION_THRESHOLD`), ``summary`` and ``quantities``
        from :func:`sbc_uniformity` over all finished simulations, and ``non_exploding`` with
        the same summary over the datasets that did not explode.
    """
    uniformity = json.loads(result.attrs["uniformity"])
    calm = json.loads(result.attrs["uniformity_non_exploding"])
    ok = result["ok"].to_numpy().astype(bool)
    largest = result["max_abs_score"].to_numpy()
    exploding = ~(largest <= EXPLOSION_THRESHOLD)
    thinned = int(result.attrs["thinned_draws"])
    ess = result["min_ess_bulk"].to_numpy()[ok]
    return {
        "schema": "sdebayes.sbc/1",
        "simulations": int(result.sizes["simulation"]),
        "completed": int(ok.sum()),
        "failed": int((~ok).sum()),
        "model": str(result.attrs["model_name"]),
        "settings": json.loads(result.attrs["settings"]),
        "fits": {
            "thinned_draws": thinned,
            "with_divergences": int(np.sum(result["divergences"].to_numpy()[ok] > 0)),
            "max_rhat_above_1.01": int(np.sum(result["max_rhat"].to_numpy()[ok] > 1.01)),
            "min_ess_bulk_below_thinned_draws": int(np.sum(ess < thinned)),
            "median_seconds": _rounded(float(np.nanmedian(result["seconds"].to_numpy()))),
            "failures": json.loads(result.attrs.get("failures", "{}")),
        },
        "exploding": {
            "threshold": EXPLOSION_THRESHOLD,
            "count": int(exploding.sum()),
            "largest_abs_score": _rounded(float(np.nanmax(largest))),
        },
        "summary": uniformity["summary"],
        "quantities": uniformity["quantities"],
        "non_exploding": {"summary": calm["summary"]},
    }


def load_sbc(path: str | Path) -> xr.Dataset:
    """Open a result file written by :func:`run_sbc`, fully loaded.

    Raises
    ------
    SdebayesError
        If the file is missing or is not an SBC result.
    """
    path = Path(path)
    if not path.is_file():
        raise SdebayesError(f"{path}: no such file; pass a result written by sdebayes sbc")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as opened:
            result = opened.load()
    except (OSError, ValueError) as err:
        raise SdebayesError(f"{path}: not a NetCDF file ({type(err).__name__})") from err
    if "pit" not in result or "uniformity" not in result.attrs:
        raise SdebayesError(f"{path}: not an SBC result; pass a file written by sdebayes sbc")
    return result
