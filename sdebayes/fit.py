"""Fit the model: sampling, derived quantities, diagnostics and the saved DataTree.

:func:`fit` is the single entry point the command line and notebooks use. It reduces the
trajectories to sufficient statistics, samples the posterior, adds every derived quantity in
the objectives' own units and returns an :class:`xarray.DataTree` with the groups
``posterior``, ``sample_stats``, ``observed_data`` and ``constant_data``. The tree's attributes
record what is needed to reproduce the fit: the model specification's TOML text, the sampler
and its settings, the seed, the package versions and a hash of the data.

:func:`save_posterior` writes the tree as NetCDF atomically: the file appears complete or not
at all, and an existing file is only replaced once the new one is fully written.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from sdebayes import __version__, dynamics
from sdebayes._signals import exit_at_once_on_signal, raise_if_interrupted
from sdebayes.data import objective_bounds, transitions
from sdebayes.diagnostics import diagnose
from sdebayes.exceptions import SamplerError
from sdebayes.model import DATA_NAMES, build_model
from sdebayes.specs import ModelSpec, load_spec
from sdebayes.sufficient_stats import standardization, sufficient_statistics
from sdebayes.transitions import choose_discretization, typical_step

__all__ = [
    "BACKENDS",
    "SAMPLERS",
    "DataDescription",
    "fit",
    "fit_statistics",
]

logger = logging.getLogger(__name__)

Sampler = Literal["nutpie", "numpyro", "pymc"]
SAMPLERS: tuple[str, ...] = ("nutpie", "numpyro", "pymc")
"""NUTS implementations :func:`fit` can use; nutpie is the default (see docs/benchmarks.md)."""

Backend = Literal["numba", "jax"]
BACKENDS: tuple[str, ...] = ("numba", "jax")
"""What nutpie compiles the model with. Numba compiles slowly (cached on disk only in part)
and samples fast, and a compiled model is reused by later fits in the process; JAX compiles in
seconds and samples several times slower (docs/benchmarks.md)."""

_COMPILED: dict[tuple, Any] = {}


def fit(
    trajectories: xr.Dataset,
    spec: ModelSpec | str | Path | None = None,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    sampler: Sampler = "nutpie",
    backend: Backend = "numba",
    progressbar: bool = True,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    discretization: Literal["auto", "euler", "exact"] = "auto",
    standardize: bool = True,
    centre_states: bool = True,
) -> xr.DataTree:
    """Sample the posterior of the SDE model for every strategy in ``trajectories``.

    Parameters
    ----------
    trajectories : xarray.Dataset
        As returned by :func:`sdebayes.data.read_trajectories`. All strategies are fitted
        together, which is what partial pooling needs.
    spec : ModelSpec, str or Path, optional
        Model specification or the name/path of one. Default: ``"hierarchical"``.
    draws : int, default=1000
        Posterior draws per chain after tuning.
    tune : int, default=1000
        Tuning (warm-up) iterations per chain, discarded.
    chains : int, default=4
        Independent chains; R-hat needs at least 2.
    random_seed : int, optional
        Seed of the sampler. The same seed, data, model and sampler give identical draws.
    sampler : {"nutpie", "numpyro", "pymc"}, default="nutpie"
        NUTS implementation.
    backend : {"numba", "jax"}, default="numba"
        How nutpie compiles the model (ignored by the other samplers). Numba suits many fits
        in one process, which reuse the compiled model; JAX compiles in seconds, which suits
        a single fit on a machine whose compile cache is cold.
    progressbar : bool, default=True
        Show the sampler's progress bar.
    bounds : tuple of numpy.ndarray, optional
        Lowest and highest possible score per objective, used to flag equilibria outside the
        score range. Default: the observed range of each objective.
    discretization : {"auto", "euler", "exact"}, default="auto"
        Transition density: Euler-Maruyama (the published model) or the exact transition of
        the linear SDE. ``auto`` picks ``exact`` when the data have a ``time`` column or
        uneven time steps (a skipped step counts) and ``euler`` otherwise. The choice is
        recorded in ``attrs["discretization"]``.
    standardize : bool, default=True
        Fit the objectives divided by their standard deviations (see
        :func:`sdebayes.sufficient_stats.standardization`), so that one prior suits any
        scale. ``False`` fits the scores as they are, with the priors read in the
        objectives' own units; simulation-based calibration needs it, because there the data
        are drawn from the priors themselves.
    centre_states : bool, default=True
        Sample the drift at each strategy's mean state (``c_s``) rather than the intercept,
        which decorrelates the posterior. ``False`` samples the intercept ``b_s`` with the
        ``c_s`` prior (again for simulation-based calibration).

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (model variables on the standardised scale and every derived
        quantity in original units), ``sample_stats``, ``observed_data`` (the trajectories)
        and ``constant_data`` (the sufficient statistics). Diagnostics are in the root's
        ``attrs["diagnostics"]`` (a JSON string).

    Warns
    -----
    ConvergenceWarning
        If R-hat or the bulk effective sample size cross :data:`DIAGNOSTIC_THRESHOLDS`.
    SamplingWarning
        If the sampler reports divergent transitions.
    """
    _check_settings(draws, tune, chains, sampler, backend)
    spec = spec if isinstance(spec, ModelSpec) else load_spec(spec)

    steps = transitions(trajectories)
    if standardize:
        location, scale = standardization(trajectories)
    else:
        location = np.zeros(trajectories.sizes["objective"])
        scale = np.ones(trajectories.sizes["objective"])
    strategies = list(dict.fromkeys(trajectories["strategy"].to_numpy()))
    statistics = sufficient_statistics(steps, location, scale, strategies, centre_states)
    return _fit(
        statistics,
        DataDescription.from_trajectories(trajectories),
        trajectories,
        spec,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        sampler=sampler,
        backend=backend,
        progressbar=progressbar,
        bounds=bounds,
        discretization=discretization,
        standardize=standardize,
        centre_states=centre_states,
    )


@dataclass(frozen=True)
class DataDescription:
    """What a fit records about its data besides the sufficient statistics.

    Parameters
    ----------
    source : str
        File, directory or store the data came from.
    objectives : tuple of str
    sessions : int
        Number of sessions.
    sessions_without_transitions : int
        Sessions with a single version.
    has_time_column : bool
        Whether the table had a ``time`` column (``discretization="auto"`` then picks the
        exact transition).
    lower, upper : numpy.ndarray
        Lowest and highest observed score of each objective.
    """

    source: str
    objectives: tuple[str, ...]
    sessions: int
    sessions_without_transitions: int
    has_time_column: bool
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def from_trajectories(cls, trajectories: xr.Dataset) -> DataDescription:
        """Describe a trajectory Dataset as returned by :func:`sdebayes.data.read_trajectories`."""
        versions = trajectories["time"].notnull().sum("step").to_numpy()
        lower, upper = objective_bounds(trajectories)
        return cls(
            source=str(trajectories.attrs.get("source", "")),
            objectives=tuple(map(str, trajectories["objective"].to_numpy())),
            sessions=int(trajectories.sizes["session"]),
            sessions_without_transitions=int((versions < 2).sum()),
            has_time_column=bool(trajectories.attrs.get("has_time_column", 0)),
            lower=lower,
            upper=upper,
        )


def fit_statistics(
    statistics: xr.Dataset,
    description: DataDescription,
    spec: ModelSpec | str | Path | None = None,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    sampler: Sampler = "nutpie",
    backend: Backend = "numba",
    progressbar: bool = True,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    discretization: Literal["auto", "euler", "exact"] = "auto",
    standardize: bool = True,
    centre_states: bool = True,
) -> xr.DataTree:
    """Sample the posterior from precomputed sufficient statistics.

    For data too large to hold in memory: :func:`sdebayes.distributed.distributed_statistics`
    reduces a partitioned table on a Dask cluster to ``statistics`` and ``description``.
    The result is that of :func:`fit` without the ``observed_data`` group (the trajectories
    are not at hand); the numbers of sessions are kept in ``attrs["data_sessions"]`` and
    ``attrs["data_sessions_without_transitions"]``.

    Parameters
    ----------
    statistics : xarray.Dataset
        As returned by :func:`sdebayes.sufficient_stats.sufficient_statistics`.
    description : DataDescription
        Source, objectives, session counts, time column and score range of the data.
    spec, draws, tune, chains, random_seed, sampler, backend, progressbar, discretization
        As in :func:`fit`.
    bounds : tuple of numpy.ndarray, optional
        As in :func:`fit`. Default: ``(description.lower, description.upper)``.
    standardize, centre_states : bool, default=True
        How ``statistics`` were computed; recorded in the attributes.

    Returns
    -------
    xarray.DataTree
        As :func:`fit`, without ``observed_data``.
    """
    _check_settings(draws, tune, chains, sampler, backend)
    spec = spec if isinstance(spec, ModelSpec) else load_spec(spec)
    return _fit(
        statistics,
        description,
        None,
        spec,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        sampler=sampler,
        backend=backend,
        progressbar=progressbar,
        bounds=bounds,
        discretization=discretization,
        standardize=standardize,
        centre_states=centre_states,
    )


def _fit(
    statistics: xr.Dataset,
    description: DataDescription,
    trajectories: xr.Dataset | None,
    spec: ModelSpec,
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    sampler: Sampler,
    backend: Backend,
    progressbar: bool,
    bounds: tuple[np.ndarray, np.ndarray] | None,
    discretization: Literal["auto", "euler", "exact"],
    standardize: bool,
    centre_states: bool,
) -> xr.DataTree:
    timed = xr.Dataset(attrs={"has_time_column": int(description.has_time_column)})
    discretization = choose_discretization(timed, statistics, discretization)
    logger.info(
        "fitting %s model (%s transitions): %d strategies, %d transitions",
        spec.name,
        discretization,
        statistics.sizes["strategy"],
        int(statistics["n_transitions"].sum()),
    )

    raw, timings = _sample(
        statistics,
        spec,
        discretization,
        draws,
        tune,
        chains,
        random_seed,
        sampler,
        progressbar,
        backend,
    )
    seconds = timings["sampling_seconds"]

    bounds = bounds if bounds is not None else (description.lower, description.upper)
    posterior = _with_derived_quantities(
        raw["posterior"].to_dataset(), statistics, spec, bounds, discretization
    )
    tree = _assemble(posterior, raw["sample_stats"].to_dataset(), trajectories, statistics)
    tree.attrs.update(
        _provenance(description, spec, sampler, draws, tune, chains, random_seed, timings)
    )
    tree.attrs.update(
        backend=backend if sampler == "nutpie" else "",
        discretization=discretization,
        typical_dt=typical_step(statistics),
        standardize=int(standardize),
        centre_states=int(centre_states),
    )
    if trajectories is None:
        tree.attrs.update(
            data_sessions=description.sessions,
            data_sessions_without_transitions=description.sessions_without_transitions,
        )
    tree.attrs["diagnostics"] = json.dumps(diagnose(tree, sampler=sampler, seconds=seconds))
    return tree


def _check_settings(draws: int, tune: int, chains: int, sampler: str, backend: str) -> None:
    _check_positive(draws=draws, tune=tune, chains=chains)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is not one of {', '.join(SAMPLERS)}")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {', '.join(BACKENDS)}")
    _check_optional_dependency(sampler, backend)


def _check_optional_dependency(sampler: str, backend: str) -> None:
    """Say how to install JAX or NumPyro before anything is compiled."""
    if sampler == "numpyro":
        needed, chosen = "numpyro", "sampler='numpyro'"
    elif sampler == "nutpie" and backend == "jax":
        needed, chosen = "jax", "backend='jax'"
    else:
        return
    if importlib.util.find_spec(needed) is None:
        raise SamplerError(
            f"{chosen} needs {needed}; install it with: pip install 'sdebayes[numpyro]'"
        )


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer; pass e.g. {name}=1000")


def _sample(
    statistics: xr.Dataset,
    spec: ModelSpec,
    discretization: Literal["euler", "exact"],
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    sampler: Sampler,
    progressbar: bool,
    backend: Backend = "numba",
) -> tuple[xr.DataTree, dict[str, float | None]]:
    """Draw from the posterior; also return compile and sampling wall times in seconds.

    PyMC's own and NumPyro's samplers compile inside :func:`pymc.sample`, so for them the
    compile time is part of the sampling time and reported as ``None``.
    """
    if sampler == "nutpie":
        import nutpie

        started = time.perf_counter()
        compiled = _compiled_nutpie(statistics, spec, discretization, backend)
        # A JAX model is compiled with its data as constants (see _compiled_nutpie).
        used = {variable.name for variable in getattr(compiled, "shared_var_keys", ())}
        compiled = compiled.with_data(
            **{
                name: statistics[name].to_numpy()
                for name in DATA_NAMES[discretization]
                if name in used  # the stepped exact model has no use for interval_dt
            }
        )
        compile_seconds = time.perf_counter() - started
        seed = None if random_seed is None else int(random_seed)
        started = time.perf_counter()
        result = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=progressbar,
            save_warmup=False,
        )
    else:
        import pymc as pm

        compile_seconds = None
        started = time.perf_counter()
        with build_model(statistics, spec, discretization):
            result = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
                nuts_sampler=sampler,
                progressbar=progressbar,
                compute_convergence_checks=False,
                initvals=_starting_drift(statistics, spec, discretization),
            )
    # nutpie and PyMC return the draws so far on Ctrl-C; the command line must stop instead
    raise_if_interrupted()
    timings = {
        "compile_seconds": None if compile_seconds is None else round(compile_seconds, 3),
        "sampling_seconds": round(time.perf_counter() - started, 3),
    }
    return _relabel(result, statistics), timings


def _compiled_nutpie(
    statistics: xr.Dataset,
    spec: ModelSpec,
    discretization: Literal["euler", "exact"],
    backend: Backend = "numba",
) -> Any:
    """Compile the model once per specification and shape; later fits only swap the data.

    With JAX the data are compiled in as constants, which samples about twice as fast as
    swappable data (measured), so a JAX model is reused only for the same data.
    """
    import nutpie

    key = (
        json.dumps(spec.to_dict(), sort_keys=True),
        discretization,
        statistics.sizes["strategy"],
        statistics.sizes["objective"],
        tuple(statistics["interval_dt"].to_numpy()) if discretization == "exact" else (),
        backend,
        _data_digest(statistics, discretization) if backend == "jax" else "",
    )
    if key not in _COMPILED:
        started = time.perf_counter()
        model = build_model(statistics, spec, discretization)
        options: dict[str, Any] = {"freeze_model": False}
        if backend == "jax":
            # Freeze here rather than in nutpie, so that the variables to jitter belong to
            # the model that is compiled (nutpie's own freezing makes new variables).
            from pymc.model.transform.optimization import freeze_dims_and_data

            model = freeze_dims_and_data(model)
            options.update(backend="jax", gradient_backend="jax")
        start = _starting_drift(statistics, spec, discretization)
        jittered = {
            variable for variable in model.free_RVs if start is None or variable.name not in start
        }
        logger.info("compiling the model with %s", backend)
        with exit_at_once_on_signal():
            _COMPILED[key] = nutpie.compile_pymc_model(
                model, initial_points=start, jitter_rvs=jittered, **options
            )
        logger.info("compiled the model with %s in %.1f s", backend, time.perf_counter() - started)
    return _COMPILED[key]


def _data_digest(statistics: xr.Dataset, discretization: Literal["euler", "exact"]) -> str:
    digest = hashlib.sha256()
    for name in DATA_NAMES[discretization]:
        digest.update(np.ascontiguousarray(statistics[name].to_numpy(), dtype=float).tobytes())
    return digest.hexdigest()


def _starting_drift(
    statistics: xr.Dataset, spec: ModelSpec, discretization: Literal["euler", "exact"]
) -> dict[str, np.ndarray] | None:
    r"""Choose starting values of the drift for the exact model, from Euler least squares.

    When every gap is a whole number of time units, the exact likelihood cannot tell a
    drift matrix from one whose complex eigenvalues are shifted by :math:`\pm 2\pi i`
    (the same :math:`e^{A\Delta t}` at every integer gap). The prior makes those aliases
    improbable, but a chain started at random can settle in one (seen on simulated data: a
    chain with eigenvalues :math:`\pm 6.1i` and R-hat 1.5). The exact model therefore starts
    every chain's drift, unjittered, at the Euler least-squares estimate, which lies on the
    principal branch; the other variables are jittered as usual. Returns ``None`` (plain
    jittered starts) for the Euler model, for the non-centred parameterisation and when a
    strategy's regression is singular. A compiled model keeps the starting values of the
    data it was compiled for, so later fits in the same process with the same shapes start
    from those: still on the principal branch, only not tailored.
    """
    if discretization == "euler" or spec.parameterization == "noncentred":
        return None
    s_zz = statistics["s_zz"].to_numpy()
    if np.any(np.linalg.cond(s_zz) > 1e10):
        return None
    coefficients = np.linalg.solve(s_zz, statistics["s_zy"].to_numpy())
    drift = np.swapaxes(coefficients[:, :-1, :], -1, -2)
    if spec.pooling == "complete":
        return {"drift_population": drift.mean(axis=0)}
    if spec.pooling == "none":
        prior = spec.drift
        eye = np.eye(drift.shape[-1])
        mu = prior.diagonal_mu * eye
        sigma = prior.diagonal_sigma * eye + prior.off_diagonal_sigma * (1.0 - eye)
        return {"drift_offset": (drift - mu) / sigma}
    return {"drift_strategy": drift, "drift_population": drift.mean(axis=0)}


def _relabel(result: xr.DataTree, statistics: xr.Dataset) -> xr.DataTree:
    """Give the strategy dimension this dataset's names (a reused compiled model keeps old ones)."""
    labels = {"strategy": statistics["strategy"].to_numpy()}
    for name in ("posterior", "sample_stats"):
        group = result[name].to_dataset()
        if "strategy" in group.dims:
            result[name] = xr.DataTree(group.assign_coords(labels))
    return result


def _with_derived_quantities(
    posterior: xr.Dataset,
    statistics: xr.Dataset,
    spec: ModelSpec,
    bounds: tuple[np.ndarray, np.ndarray],
    discretization: Literal["euler", "exact"],
) -> xr.Dataset:
    original = dynamics.to_original_scale(
        posterior["drift_standardised"].transpose("chain", "draw", "strategy", ...).to_numpy(),
        posterior["centre_drift"].transpose("chain", "draw", "strategy", ...).to_numpy(),
        posterior["diffusion_chol"].transpose("chain", "draw", "strategy", ...).to_numpy(),
        statistics,
    )
    derived = dynamics.derived_quantities(
        original["drift"],
        original["intercept"],
        original["diffusion_cov"],
        statistics,
        bounds,
        spec.dynamics,
        dt=typical_step(statistics),
        discretization=discretization,
    )
    derived = derived.assign_coords(chain=posterior["chain"], draw=posterior["draw"])
    return xr.merge([posterior, derived], compat="override", join="exact")


def _assemble(
    posterior: xr.Dataset,
    sample_stats: xr.Dataset,
    trajectories: xr.Dataset | None,
    statistics: xr.Dataset,
) -> xr.DataTree:
    groups = {"posterior": posterior, "sample_stats": sample_stats}
    if trajectories is not None:
        observed = trajectories[["scores", "time"]].copy()
        observed.attrs = {}
        groups["observed_data"] = observed
    groups["constant_data"] = statistics
    return xr.DataTree.from_dict(groups)


def _provenance(
    description: DataDescription,
    spec: ModelSpec,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    timings: dict[str, float | None],
) -> dict[str, Any]:
    import arviz
    import pymc
    import pytensor

    source = description.source
    return {
        "sdebayes_version": __version__,
        "pymc_version": pymc.__version__,
        "pytensor_version": pytensor.__version__,
        "arviz_version": arviz.__version__,
        "data_source": source,
        "data_sha256": _sha256(source),
        "objectives": json.dumps(list(description.objectives)),
        "model_name": spec.name,
        "model_spec": spec.source or json.dumps(spec.to_dict()),
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": -1 if random_seed is None else int(random_seed),
        "sampling_seconds": timings["sampling_seconds"],
        "compile_seconds": -1.0
        if timings["compile_seconds"] is None
        else timings["compile_seconds"],
    }


def _sha256(path: str) -> str:
    file = Path(path)
    if not path or not file.is_file():
        return ""
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
