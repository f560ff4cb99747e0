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

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from sdebayes import __version__, dynamics
from sdebayes._warnings import warn
from sdebayes.data import transitions
from sdebayes.exceptions import ConvergenceWarning, PosteriorFileError, SamplingWarning
from sdebayes.model import DATA_NAMES, build_model
from sdebayes.simulate import objective_bounds
from sdebayes.specs import ModelSpec, load_spec
from sdebayes.sufficient_stats import standardization, sufficient_statistics

__all__ = [
    "DIAGNOSTIC_THRESHOLDS",
    "SAMPLERS",
    "check_output_path",
    "diagnose",
    "fit",
    "load_posterior",
    "save_posterior",
]

logger = logging.getLogger(__name__)

Sampler = Literal["nutpie", "numpyro", "pymc"]
SAMPLERS: tuple[str, ...] = ("nutpie", "numpyro", "pymc")
"""NUTS implementations :func:`fit` can use; nutpie is the default (see docs/benchmarks.md)."""

DIAGNOSTIC_THRESHOLDS = {"max_rhat": 1.01, "min_ess_bulk": 400, "divergences": 0}
"""Limits beyond which :func:`diagnose` warns (Vehtari et al. 2021 for R-hat and ESS)."""

_DIAGNOSED = ("drift", "intercept", "diffusion_cov", "convergence_rate")
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
    progressbar: bool = True,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
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
    progressbar : bool, default=True
        Show the sampler's progress bar.
    bounds : tuple of numpy.ndarray, optional
        Lowest and highest possible score per objective, used to flag equilibria outside the
        score range. Default: the observed range of each objective.

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
    _check_positive(draws=draws, tune=tune, chains=chains)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is not one of {', '.join(SAMPLERS)}")
    spec = spec if isinstance(spec, ModelSpec) else load_spec(spec)

    steps = transitions(trajectories)
    location, scale = standardization(trajectories)
    strategies = list(dict.fromkeys(trajectories["strategy"].to_numpy()))
    statistics = sufficient_statistics(steps, location, scale, strategies)
    logger.info(
        "fitting %s model: %d strategies, %d transitions",
        spec.name,
        len(strategies),
        int(statistics["n_transitions"].sum()),
    )

    started = time.perf_counter()
    raw = _sample(statistics, spec, draws, tune, chains, random_seed, sampler, progressbar)
    seconds = time.perf_counter() - started

    bounds = bounds if bounds is not None else objective_bounds(trajectories)
    posterior = _with_derived_quantities(raw["posterior"].to_dataset(), statistics, spec, bounds)
    tree = _assemble(posterior, raw["sample_stats"].to_dataset(), trajectories, statistics)
    tree.attrs.update(
        _provenance(trajectories, spec, sampler, draws, tune, chains, random_seed, seconds)
    )
    tree.attrs["diagnostics"] = json.dumps(diagnose(tree, sampler=sampler, seconds=seconds))
    return tree


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer; pass e.g. {name}=1000")


def _sample(
    statistics: xr.Dataset,
    spec: ModelSpec,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    sampler: Sampler,
    progressbar: bool,
) -> xr.DataTree:
    if sampler == "nutpie":
        import nutpie

        compiled = _compiled_nutpie(statistics, spec)
        compiled = compiled.with_data(**{name: statistics[name].to_numpy() for name in DATA_NAMES})
        seed = None if random_seed is None else int(random_seed)
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

        with build_model(statistics, spec):
            result = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
                nuts_sampler=sampler,
                progressbar=progressbar,
                compute_convergence_checks=False,
            )
    return _relabel(result, statistics)


def _compiled_nutpie(statistics: xr.Dataset, spec: ModelSpec) -> Any:
    """Compile the model once per specification and shape; later fits only swap the data."""
    import nutpie

    key = (
        json.dumps(spec.to_dict(), sort_keys=True),
        statistics.sizes["strategy"],
        statistics.sizes["objective"],
    )
    if key not in _COMPILED:
        started = time.perf_counter()
        _COMPILED[key] = nutpie.compile_pymc_model(build_model(statistics, spec))
        logger.info("compiled the model in %.1f s", time.perf_counter() - started)
    return _COMPILED[key]


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
    )
    derived = derived.assign_coords(chain=posterior["chain"], draw=posterior["draw"])
    return xr.merge([posterior, derived], compat="override", join="exact")


def _assemble(
    posterior: xr.Dataset,
    sample_stats: xr.Dataset,
    trajectories: xr.Dataset,
    statistics: xr.Dataset,
) -> xr.DataTree:
    observed = trajectories[["scores", "time"]].copy()
    observed.attrs = {}
    return xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": sample_stats,
            "observed_data": observed,
            "constant_data": statistics,
        }
    )


def _provenance(
    trajectories: xr.Dataset,
    spec: ModelSpec,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    seconds: float,
) -> dict[str, Any]:
    import arviz
    import pymc
    import pytensor

    source = str(trajectories.attrs.get("source", ""))
    return {
        "sdebayes_version": __version__,
        "pymc_version": pymc.__version__,
        "pytensor_version": pytensor.__version__,
        "arviz_version": arviz.__version__,
        "data_source": source,
        "data_sha256": _sha256(source),
        "objectives": json.dumps(list(map(str, trajectories["objective"].to_numpy()))),
        "model_name": spec.name,
        "model_spec": spec.source or json.dumps(spec.to_dict()),
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": -1 if random_seed is None else int(random_seed),
        "sampling_seconds": round(seconds, 3),
        "discretization": "euler",
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

    posterior = tree["posterior"].to_dataset()[list(_DIAGNOSED)]
    rhats = rhat(posterior)
    ess_bulk = ess(posterior, method="bulk")
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
    problems = _diagnostic_problems(result)
    result["passed"] = not problems
    if warn_user:
        for message, category in problems:
            warn(message, category)
    return result


def _diagnostic_problems(result: dict[str, Any]) -> list[tuple[str, type[Warning]]]:
    limits = DIAGNOSTIC_THRESHOLDS
    problems: list[tuple[str, type[Warning]]] = []
    if not result["max_rhat"] <= limits["max_rhat"]:
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


def check_output_path(path: str | Path, overwrite: bool = True) -> Path:
    """Fail early if ``path`` cannot be written, before any expensive work starts.

    Parameters
    ----------
    path : str or Path
        Planned output file.
    overwrite : bool, default=True
        Whether an existing file may be replaced (atomically, once the new one is complete).

    Returns
    -------
    Path
        The resolved path.

    Raises
    ------
    PosteriorFileError
        If the directory does not exist or is not writable, or the path is a directory.
    """
    path = Path(path).expanduser()
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise PosteriorFileError(f"{path}: is a directory; pass a file name such as fit.nc")
    if not directory.is_dir():
        raise PosteriorFileError(
            f"{path}: the directory {directory} does not exist; create it first"
        )
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PosteriorFileError(f"{path}: not writable; choose another --output")
    if path.exists() and not overwrite:
        raise PosteriorFileError(f"{path}: already exists; remove it or pass another --output")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it into place only on success.

    Parameters
    ----------
    path : str or Path
        Final destination.

    Yields
    ------
    Path
        Where to write. It is removed if the block raises (including KeyboardInterrupt).
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_posterior(tree: xr.DataTree, path: str | Path) -> Path:
    """Write a fit as NetCDF (h5netcdf engine) atomically.

    Parameters
    ----------
    tree : xarray.DataTree
    path : str or Path

    Returns
    -------
    Path
    """
    path = check_output_path(path)
    with atomic_path(path) as temporary:
        tree.to_netcdf(temporary, engine="h5netcdf")
    logger.info("wrote %s", path)
    return path


def load_posterior(path: str | Path, groups: Sequence[str] = ("posterior",)) -> xr.DataTree:
    """Open a posterior written by :func:`save_posterior`, read-only, fully loaded.

    Parameters
    ----------
    path : str or Path
    groups : sequence of str, default=("posterior",)
        Groups that must be present.

    Returns
    -------
    xarray.DataTree

    Raises
    ------
    PosteriorFileError
        If the file is missing, not NetCDF/HDF5, or lacks a required group.
    """
    path = Path(path)
    if not path.is_file():
        raise PosteriorFileError(
            f"{path}: no such file; pass a posterior written by sdebayes sample"
        )
    try:
        with xr.open_datatree(path, engine="h5netcdf") as opened:
            tree = opened.load()
    except (OSError, ValueError) as err:
        raise PosteriorFileError(
            f"{path}: not a NetCDF posterior ({type(err).__name__}); pass a file written by "
            "sdebayes sample"
        ) from err

    missing = [group for group in groups if group not in tree.children]
    if missing:
        raise PosteriorFileError(
            f"{path}: lacks group(s) {', '.join(missing)}; it has "
            f"{', '.join(tree.children) or 'no groups'}. Pass a file written by sdebayes sample"
        )
    return tree
