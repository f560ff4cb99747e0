"""Helpers shared by the benchmarks: the machine, subprocesses, timings and medians."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "BENCHMARKS",
    "PYTHON",
    "REPOSITORY",
    "describe_machine",
    "load",
    "median",
    "run_task",
]

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
PYTHON = sys.executable


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(value, 2) for value in os.getloadavg()]


def describe_machine() -> dict[str, Any]:
    """CPU, cores, memory, Python and the versions of the libraries that matter here."""
    from importlib.metadata import version

    cpu = platform.processor() or ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0.0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) / 2**20
    packages = {}
    for name in ("pymc", "pytensor", "nutpie", "numba", "jax", "numpyro", "dask", "distributed"):
        try:
            packages[name] = version(name)
        except Exception:  # a missing optional package is simply not listed
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "packages": packages,
        "load_at_start": load(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def median(values: list[float]) -> float:
    """Median of the finite values (NaN when there are none)."""
    finite = [value for value in values if value == value]
    return statistics.median(finite) if finite else float("nan")


def run_task(
    task: str,
    arguments: dict[str, Any],
    env: dict[str, str] | None = None,
    timeout: float = 3600,
) -> dict[str, Any]:
    """Run ``benchmarks/_tasks.py TASK`` in a fresh, niced process and parse its JSON line.

    Every measurement that includes imports, compilation or peak memory runs in its own
    process, so that one measurement cannot warm or inflate the next.
    """
    command = ["nice", "-n", "5", PYTHON, "-m", "benchmarks._tasks", task, json.dumps(arguments)]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPOSITORY,
        check=False,
    )
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"task {task} {arguments} failed (exit {done.returncode}):\n{tail}")
    result = json.loads(lines[-1])
    result["process_seconds"] = round(wall, 3)
    return result
