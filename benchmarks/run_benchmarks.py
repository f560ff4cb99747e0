"""Run every sdebayes benchmark and write docs/benchmarks.md.

    nice python benchmarks/run_benchmarks.py            # everything (about an hour, 2 cores)
    python benchmarks/run_benchmarks.py --only scaling  # one section, merged into the results
    python benchmarks/run_benchmarks.py --render        # rewrite the page from the results file

Measurements that compare alternatives run side by side in one run: interleaved, each in a
fresh process where imports, compilation or memory matter, and repeated; the page reports
medians and ratios, and the load average of the machine before and after each section.
Raw results are kept in ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Import the benchmark modules as ``benchmarks.*`` from the repository root, and keep this
# directory off sys.path: a sibling script there could shadow an installed package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from benchmarks._harness import (  # noqa: E402
    PYTHON,
    REPOSITORY,
    describe_machine,
    load,
    median,
    run_task,
)
from benchmarks.render_benchmarks import render  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"
PAGE = REPOSITORY / "docs" / "benchmarks.md"
TRACES = REPOSITORY.parent / "shared" / "data" / "real-traces" / "traces.jsonl"
SDEBAYES = str(Path(PYTHON).with_name("sdebayes"))

FULL = {
    "draws": 1000,
    "tune": 1000,
    "chains": 4,
    "ess_seeds": [1, 2, 3],
    "ess_large_sessions": 1_000,
    "sampler_repeats": 2,
    "pymc_repeats": 1,
    "cold_repeats": 2,
    "warm_repeats": 2,
    "sizes": [100, 1_000, 10_000, 100_000],
    "steps": 10,
    "dask_sessions": 100_000,
    "dask_partitions": 40,
    "scoring_versions": 2_000,
    "scoring_repeats": 3,
}
QUICK = {
    **FULL,
    "draws": 100,
    "tune": 100,
    "chains": 2,
    "ess_seeds": [1],
    "ess_large_sessions": 200,
    "sampler_repeats": 1,
    "cold_repeats": 1,
    "warm_repeats": 1,
    "sizes": [100, 1_000],
    "dask_sessions": 1_000,
    "dask_partitions": 4,
    "scoring_versions": 100,
    "scoring_repeats": 1,
}

CONFIGURATIONS = [
    ("nutpie", "numba"),
    ("nutpie", "jax"),
    ("numpyro", None),
]


def section(name: str, measure) -> dict[str, Any]:
    """Run one section and record the load before and after it."""
    print(f"[{time.strftime('%H:%M:%S')}] {name} (load {load()})", flush=True)
    before = load()
    started = time.perf_counter()
    result = measure()
    return {
        "load_before": before,
        "load_after": load(),
        "minutes": round((time.perf_counter() - started) / 60, 1),
        **result,
    }


def measure_ess(settings: dict[str, Any]) -> dict[str, Any]:
    arguments = {key: settings[key] for key in ("draws", "tune", "chains")}
    return run_task("ess", {**arguments, "seeds": settings["ess_seeds"]})


def measure_ess_large(settings: dict[str, Any]) -> dict[str, Any]:
    """The same comparison on ten times the bundled data (simulated from its scenario)."""
    arguments = {key: settings[key] for key in ("draws", "tune", "chains")}
    sessions = settings["ess_large_sessions"]
    result = run_task(
        "ess",
        {**arguments, "seeds": settings["ess_seeds"][:1], "sessions": sessions},
        timeout=7200,
    )
    return {"sessions": sessions, **result}


def measure_samplers(settings: dict[str, Any]) -> dict[str, Any]:
    arguments = {key: settings[key] for key in ("draws", "tune", "chains")}
    names = ["nutpie-numba", "nutpie-jax", "numpyro"]
    runs = []
    for repeat in range(settings["sampler_repeats"]):
        order = names if repeat % 2 == 0 else names[::-1]
        for name in order:
            runs.append(run_task("sampler", {**arguments, "sampler": name, "seed": 1 + repeat}))
    for repeat in range(settings["pymc_repeats"]):
        runs.append(run_task("sampler", {**arguments, "sampler": "pymc", "seed": 1 + repeat}))
    return {"settings": arguments, "runs": runs}


def _sample_command(
    sampler: str, backend: str | None, output: Path, settings: dict[str, Any]
) -> list[str]:
    command = [SDEBAYES, "sample", "--sampler", sampler, "--seed", "1", "--no-progress"]
    if backend is not None:
        command += ["--backend", backend]
    for key in ("draws", "tune", "chains"):
        command += [f"--{key}", str(settings[key])]
    return [*command, "--json", "--output", str(output)]


def run_sample(
    sampler: str, backend: str | None, settings: dict[str, Any], home: Path | None
) -> dict[str, Any]:
    """Time one ``sdebayes sample`` on the bundled data; ``home`` set means a cold cache."""
    import xarray as xr

    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "fit.nc"
        env = dict(os.environ)
        if home is not None:
            env.update(HOME=str(home), NUMBA_CACHE_DIR=str(home / "numba-cache"))
        started = time.perf_counter()
        done = subprocess.run(
            ["nice", "-n", "5", *_sample_command(sampler, backend, output, settings)],
            capture_output=True,
            text=True,
            env=env,
            cwd=scratch,
            check=False,
        )
        wall = time.perf_counter() - started
        if done.returncode not in (0, 3):
            raise RuntimeError(f"sdebayes sample failed: {done.stderr.strip()[-2000:]}")
        tree = xr.open_datatree(output)
        compile_seconds = float(tree.attrs["compile_seconds"])
        sampling_seconds = float(tree.attrs["sampling_seconds"])
        diagnostics = json.loads(tree.attrs["diagnostics"])
        tree.close()
    return {
        "sampler": sampler,
        "backend": backend,
        "cold": home is not None,
        "wall_seconds": round(wall, 3),
        "compile_seconds": None if compile_seconds < 0 else compile_seconds,
        "sampling_seconds": sampling_seconds,
        "min_ess": diagnostics.get("min_ess_bulk"),
        "load_at_end": load(),
    }


def measure_cold_warm(settings: dict[str, Any]) -> dict[str, Any]:
    """Cold (empty PyTensor, Numba and home directories) and warm runs, interleaved."""
    runs, imports = [], []
    for repeat in range(max(settings["cold_repeats"], settings["warm_repeats"])):
        for sampler, backend in CONFIGURATIONS:
            if repeat < settings["cold_repeats"]:
                home = Path(tempfile.mkdtemp(prefix="sdebayes-cold-"))
                try:
                    runs.append(run_sample(sampler, backend, settings, home))
                finally:
                    shutil.rmtree(home, ignore_errors=True)
            if repeat < settings["warm_repeats"]:
                runs.append(run_sample(sampler, backend, settings, None))
        home = Path(tempfile.mkdtemp(prefix="sdebayes-cold-"))
        try:
            env = {"HOME": str(home), "NUMBA_CACHE_DIR": str(home / "numba-cache")}
            imports.append({"cold": True, **run_task("imports", {}, env=env)})
        finally:
            shutil.rmtree(home, ignore_errors=True)
        imports.append({"cold": False, **run_task("imports", {})})
    return {
        "settings": {key: settings[key] for key in ("draws", "tune", "chains")},
        "runs": runs,
        "imports": imports,
    }


def measure_scaling(settings: dict[str, Any]) -> dict[str, Any]:
    arguments = {key: settings[key] for key in ("draws", "tune", "chains", "steps")}
    runs = [
        run_task("scaling", {**arguments, "sessions": sessions, "seed": 1}, timeout=7200)
        for sessions in settings["sizes"]
    ]
    with tempfile.TemporaryDirectory() as scratch:
        path = str(Path(scratch) / "parts")
        written = run_task(
            "write_partitions",
            {
                "sessions": settings["dask_sessions"],
                "steps": settings["steps"],
                "path": path,
                "partitions": settings["dask_partitions"],
            },
        )
        dask_run = run_task(
            "dask_scaling",
            {**arguments, "path": path, "workers": 2, "seed": 1},
            timeout=7200,
        )
    return {"runs": runs, "dask": {**dask_run, **written}}


def measure_scoring(settings: dict[str, Any]) -> dict[str, Any]:
    if not TRACES.exists():
        return {"skipped": f"{TRACES} not found"}
    return run_task(
        "scoring",
        {
            "traces": str(TRACES),
            "versions": settings["scoring_versions"],
            "repeats": settings["scoring_repeats"],
        },
    )


SECTIONS = {
    "ess": measure_ess,
    "ess_large": measure_ess_large,
    "samplers": measure_samplers,
    "cold_warm": measure_cold_warm,
    "scaling": measure_scaling,
    "scoring": measure_scoring,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="tiny settings, to test the harness")
    parser.add_argument("--render", action="store_true", help="only rewrite the page")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--page", type=Path, default=PAGE)
    options = parser.parse_args()

    results = json.loads(options.results.read_text()) if options.results.exists() else {}
    if not options.render:
        settings = QUICK if options.quick else FULL
        chosen = options.only.split(",") if options.only else list(SECTIONS)
        results["machine"] = describe_machine()
        results["command"] = " ".join(["python benchmarks/run_benchmarks.py", *sys.argv[1:]])
        results["quick"] = options.quick
        for name in chosen:
            results[name] = section(name, lambda name=name: SECTIONS[name](settings))
            results[name]["measured"] = time.strftime("%Y-%m-%d %H:%M")
            options.results.write_text(json.dumps(results, indent=1) + "\n")
        results["machine"]["load_at_end"] = load()
        options.results.write_text(json.dumps(results, indent=1) + "\n")
    options.page.write_text(render(results, median))
    print(f"wrote {options.page}")


if __name__ == "__main__":
    main()
