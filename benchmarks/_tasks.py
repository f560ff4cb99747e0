"""Measurements that run in a fresh process each: ``python _tasks.py TASK 'JSON arguments'``.

Each task prints one JSON line with its measurements. ``run_benchmarks.py`` starts them; they
can also be run by hand to repeat one measurement.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()

# Import the benchmark modules as ``benchmarks.*`` from the repository root, and keep this
# directory off sys.path: a sibling script there could shadow an installed package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))


def _peak_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _blas_one_thread() -> None:
    """One BLAS thread, as sdebayes intends for its tiny matrices.

    Called after the heavy imports: threadpoolctl only limits libraries already loaded, and
    SciPy brings its own OpenBLAS (which PyTensor's Numba code calls). With two threads on a
    busy machine one 3 x 1000 triangular solve took 16 ms instead of 0.2 ms.
    """
    import scipy.linalg  # noqa: F401  (load SciPy's OpenBLAS before limiting it)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _paper_statistics(sessions: int | None = None, steps: int = 10):
    """The bundled paper data, or ``sessions`` per strategy simulated from the same scenario."""
    import numpy as np

    from sdebayes.data import read_trajectories, trajectories_from_frame, transitions
    from sdebayes.datasets import paper_sessions_path
    from sdebayes.simulate import paper_scenario, simulate_sessions
    from sdebayes.sufficient_stats import standardization, sufficient_statistics

    if sessions is None:
        trajectories = read_trajectories(paper_sessions_path())
    else:
        table = simulate_sessions(paper_scenario(), sessions, steps, random_seed=1)
        trajectories = trajectories_from_frame(table, source=f"simulated {sessions}")
    location, scale = standardization(trajectories)
    strategies = list(dict.fromkeys(trajectories["strategy"].to_numpy()))
    statistics = sufficient_statistics(transitions(trajectories), location, scale, strategies, True)
    assert np.all(statistics["interval_dt"].to_numpy() == 1.0)
    return trajectories, statistics


def _drift_ess(posterior) -> float:
    """Minimum bulk effective sample size over the entries of the standardised drift."""
    import arviz_stats

    dataset = posterior.to_dataset() if hasattr(posterior, "to_dataset") else posterior
    ess = arviz_stats.ess(dataset[["drift_standardised"]], method="bulk")
    return float(ess["drift_standardised"].min())


def _nutpie_run(compiled, seed: int, draws: int, tune: int, chains: int) -> dict[str, Any]:
    import nutpie

    started = time.perf_counter()
    result = nutpie.sample(
        compiled, draws=draws, tune=tune, chains=chains, seed=seed, progress_bar=False
    )
    seconds = time.perf_counter() - started
    stats = result["sample_stats"].to_dataset()
    return {
        "seed": seed,
        "sampling_seconds": round(seconds, 3),
        "min_ess": round(_drift_ess(result["posterior"]), 1),
        "steps_per_draw": round(float(stats["n_steps"].mean()), 2),
        "divergences": int(stats["diverging"].sum()),
    }


def task_ess(arguments: dict[str, Any]) -> dict[str, Any]:
    """Production against naive model: compile both, then sample them alternately."""
    _blas_one_thread()
    import nutpie

    from benchmarks.naive_model import build_naive_model
    from sdebayes.model import build_model
    from sdebayes.specs import load_spec

    spec = load_spec("hierarchical")
    trajectories, statistics = _paper_statistics(arguments.get("sessions"))
    builders = {
        "production": lambda: build_model(statistics, spec, "euler"),
        "naive": lambda: build_naive_model(trajectories, spec),
    }
    compiled, compile_seconds = {}, {}
    for name, build in builders.items():
        started = time.perf_counter()
        compiled[name] = nutpie.compile_pymc_model(build())
        compile_seconds[name] = round(time.perf_counter() - started, 3)

    runs = []
    for position, seed in enumerate(arguments["seeds"]):
        order = ["production", "naive"] if position % 2 == 0 else ["naive", "production"]
        for name in order:
            run = _nutpie_run(
                compiled[name], seed, arguments["draws"], arguments["tune"], arguments["chains"]
            )
            runs.append({"model": name, **run})
    return {
        "compile_seconds": compile_seconds,
        "runs": runs,
        "transitions": int(statistics["n_transitions"].sum()),
    }


def task_sampler(arguments: dict[str, Any]) -> dict[str, Any]:
    """One sampler on the production model, in a fresh process (imports and compile timed)."""
    name = arguments["sampler"]
    imported = time.perf_counter()
    _blas_one_thread()
    import pymc as pm

    from sdebayes.model import build_model
    from sdebayes.specs import load_spec

    if name.startswith("nutpie"):
        import nutpie
    else:
        import jax  # noqa: F401  (numpyro's and PyMC's imports are timed with the others)
    imports = time.perf_counter() - imported

    _, statistics = _paper_statistics()
    model = build_model(statistics, load_spec("hierarchical"), "euler")
    draws, tune, chains, seed = (arguments[key] for key in ("draws", "tune", "chains", "seed"))
    if name.startswith("nutpie"):
        backend = name.split("-")[1]
        options = {"gradient_backend": "jax"} if backend == "jax" else {}
        started = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model, backend=backend, **options)
        compile_seconds = time.perf_counter() - started
        run = _nutpie_run(compiled, seed, draws, tune, chains)
    else:
        started = time.perf_counter()
        with model:
            result = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=seed,
                nuts_sampler=name,
                progressbar=False,
                compute_convergence_checks=False,
            )
        compile_seconds = None
        stats = result["sample_stats"]
        steps = stats["n_steps"] if "n_steps" in stats else stats["tree_depth"] * 0 + float("nan")
        run = {
            "seed": seed,
            "sampling_seconds": round(time.perf_counter() - started, 3),
            "min_ess": round(_drift_ess(result["posterior"]), 1),
            "steps_per_draw": round(float(steps.mean()), 2),
            "divergences": int(stats["diverging"].sum()),
        }
    return {
        "sampler": name,
        "import_seconds": round(imports, 3),
        "compile_seconds": None if compile_seconds is None else round(compile_seconds, 3),
        **run,
    }


def task_scaling(arguments: dict[str, Any]) -> dict[str, Any]:
    """Simulate one size, time table -> statistics and the fit, and record peak memory."""
    _blas_one_thread()
    import numpy as np

    from sdebayes.data import trajectories_from_frame, transitions
    from sdebayes.fit import fit
    from sdebayes.simulate import paper_scenario, simulate_sessions
    from sdebayes.sufficient_stats import standardization, sufficient_statistics

    sessions = arguments["sessions"]
    baseline = _peak_mib()
    started = time.perf_counter()
    table = simulate_sessions(paper_scenario(), sessions, arguments["steps"], random_seed=1)
    simulate_seconds = time.perf_counter() - started

    started = time.perf_counter()
    trajectories = trajectories_from_frame(table, source=f"simulated {sessions}")
    read_seconds = time.perf_counter() - started
    del table

    started = time.perf_counter()
    location, scale = standardization(trajectories)
    strategies = list(dict.fromkeys(trajectories["strategy"].to_numpy()))
    statistics = sufficient_statistics(transitions(trajectories), location, scale, strategies, True)
    statistics_seconds = time.perf_counter() - started
    peak_before_fit = _peak_mib()

    started = time.perf_counter()
    tree = fit(
        trajectories,
        draws=arguments["draws"],
        tune=arguments["tune"],
        chains=arguments["chains"],
        random_seed=arguments["seed"],
        progressbar=False,
    )
    fit_seconds = time.perf_counter() - started
    stats = tree["sample_stats"].to_dataset()
    return {
        "sessions": sessions,
        "rows": int(np.isfinite(trajectories["time"].to_numpy()).sum()),
        "transitions": int(statistics["n_transitions"].sum()),
        "simulate_seconds": round(simulate_seconds, 3),
        "read_seconds": round(read_seconds, 3),
        "statistics_seconds": round(statistics_seconds, 3),
        "compile_seconds": tree.attrs["compile_seconds"],
        "sampling_seconds": tree.attrs["sampling_seconds"],
        "fit_seconds": round(fit_seconds, 3),
        "min_ess": round(_drift_ess(tree["posterior"]), 1),
        "steps_per_draw": round(float(stats["n_steps"].mean()), 2),
        "peak_mib_start": baseline,
        "peak_mib_before_fit": peak_before_fit,
        "peak_mib": _peak_mib(),
    }


def task_dask_scaling(arguments: dict[str, Any]) -> dict[str, Any]:
    """Statistics of a partitioned Parquet directory on a local two-process cluster, then fit."""
    _blas_one_thread()
    from distributed import Client, LocalCluster

    from sdebayes.distributed import distributed_statistics
    from sdebayes.fit import fit_statistics

    baseline = _peak_mib()
    with (
        LocalCluster(
            n_workers=arguments["workers"],
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        started = time.perf_counter()
        statistics, description = distributed_statistics(arguments["path"], client=client)
        statistics_seconds = time.perf_counter() - started
        worker_memory = client.run(lambda: _peak_mib())
    peak_before_fit = _peak_mib()

    tree = fit_statistics(
        statistics,
        description,
        draws=arguments["draws"],
        tune=arguments["tune"],
        chains=arguments["chains"],
        random_seed=arguments["seed"],
        progressbar=False,
    )
    return {
        "sessions": description.sessions,
        "transitions": int(statistics["n_transitions"].sum()),
        "workers": arguments["workers"],
        "statistics_seconds": round(statistics_seconds, 3),
        "compile_seconds": tree.attrs["compile_seconds"],
        "sampling_seconds": tree.attrs["sampling_seconds"],
        "client_peak_mib_start": baseline,
        "client_peak_mib_before_fit": peak_before_fit,
        "client_peak_mib": _peak_mib(),
        "worker_peak_mib": sorted(worker_memory.values()),
    }


def task_write_partitions(arguments: dict[str, Any]) -> dict[str, Any]:
    """Simulate a size and write it as Parquet partitions (input of the dask measurement)."""
    from sdebayes.distributed import write_parquet_partitions
    from sdebayes.simulate import paper_scenario, simulate_sessions

    table = simulate_sessions(
        paper_scenario(), arguments["sessions"], arguments["steps"], random_seed=1
    )
    started = time.perf_counter()
    files = write_parquet_partitions(table, arguments["path"], arguments["partitions"])
    return {"files": len(files), "rows": len(table), "write_seconds": time.perf_counter() - started}


def task_scoring(arguments: dict[str, Any]) -> dict[str, Any]:
    """Score the same versions with 1 and 2 local workers and on a 2-worker dask cluster."""
    from sdebayes.scoring import read_traces, score_versions

    versions = read_traces(arguments["traces"])[: arguments["versions"]]
    runs = []
    for repeat in range(arguments["repeats"]):
        order = ["1 worker", "2 workers", "dask, 2 workers"]
        if repeat % 2:
            order.reverse()
        for name in order:
            started = time.perf_counter()
            if name.startswith("dask"):
                runs.append({"mode": name, **_score_on_dask(versions, 2)})
                continue
            score_versions(versions, workers=int(name[0]), progressbar=False)
            seconds = time.perf_counter() - started
            runs.append({"mode": name, "seconds": round(seconds, 3)})
    return {"versions": len(versions), "runs": runs}


def _score_on_dask(versions, workers: int) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    from sdebayes.scoring import score_versions

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("sdebayes.scoring.security"))  # workers import bandit
        started = time.perf_counter()
        score_versions(versions, workers=workers, executor=client.get_executor(), progressbar=False)
        return {"seconds": round(time.perf_counter() - started, 3)}


def task_imports(arguments: dict[str, Any]) -> dict[str, Any]:
    """Time the imports of a fit (PyMC compiles PyTensor's C helpers on a cold machine)."""
    started = time.perf_counter()
    import pymc  # noqa: F401

    pymc_seconds = time.perf_counter() - started
    import nutpie  # noqa: F401

    from sdebayes import fit  # noqa: F401

    return {
        "pymc_seconds": round(pymc_seconds, 3),
        "all_seconds": round(time.perf_counter() - started, 3),
        "interpreter_seconds": round(started - STARTED, 3),
    }


TASKS = {
    "ess": task_ess,
    "sampler": task_sampler,
    "scaling": task_scaling,
    "dask_scaling": task_dask_scaling,
    "write_partitions": task_write_partitions,
    "scoring": task_scoring,
    "imports": task_imports,
}


if __name__ == "__main__":
    task, raw = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    result = TASKS[task](json.loads(raw))
    result["load_at_end"] = [round(value, 2) for value in __import__("os").getloadavg()]
    print(json.dumps(result))
