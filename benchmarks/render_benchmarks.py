"""Turn ``benchmarks/results.json`` into docs/benchmarks.md (tables, ratios, targets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["render"]

Median = Callable[[list[float]], float]


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _loads(block: dict[str, Any]) -> str:
    before, after = block.get("load_before"), block.get("load_after")
    return (
        f"Load average (1, 5, 15 min) {before} before and {after} after this section, which "
        f"took {block.get('minutes', '?')} min (measured {block.get('measured', '?')})."
    )


def _machine(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    packages = ", ".join(f"{name} {value}" for name, value in machine.get("packages", {}).items())
    return _table(
        ["", ""],
        [
            ["CPU", f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores"],
            ["memory", f"{machine.get('memory_gib', '?')} GiB"],
            ["system", f"{machine.get('system', '?')}, Python {machine.get('python', '?')}"],
            ["libraries", packages],
            [
                "load average (1, 5, 15 min)",
                f"{machine.get('load_at_start')} at the start, {machine.get('load_at_end')} at "
                "the end (2 would mean both cores busy; each section reports its own)",
            ],
        ],
    )


def ess_summary(block: dict[str, Any], median: Median) -> dict[str, Any]:
    """Medians per model and the median of per-seed ratios of ESS per second."""
    runs = block["runs"]
    summary: dict[str, Any] = {}
    for model in ("production", "naive"):
        mine = [run for run in runs if run["model"] == model]
        summary[model] = {
            "compile": block["compile_seconds"][model],
            "sampling": median([run["sampling_seconds"] for run in mine]),
            "ess": median([run["min_ess"] for run in mine]),
            "ess_per_second": median([run["min_ess"] / run["sampling_seconds"] for run in mine]),
            "ess_per_second_total": median(
                [
                    run["min_ess"] / (run["sampling_seconds"] + block["compile_seconds"][model])
                    for run in mine
                ]
            ),
            "steps": median([run["steps_per_draw"] for run in mine]),
            "divergences": median([run["divergences"] for run in mine]),
            "repeats": len(mine),
        }
    ratios = []
    for seed in sorted({run["seed"] for run in runs}):
        pair = {run["model"]: run for run in runs if run["seed"] == seed}
        rate = {name: run["min_ess"] / run["sampling_seconds"] for name, run in pair.items()}
        ratios.append(rate["production"] / rate["naive"])
    summary["ratio"] = median(ratios)
    summary["ratios"] = ratios
    return summary


def _ess_section(block: dict[str, Any], median: Median) -> str:
    summary = ess_summary(block, median)
    rows = []
    for model, label in (
        ("production", "production: sufficient statistics, centred states, c_s"),
        ("naive", "naive: per-transition MvNormal, uncentred states, b_s"),
    ):
        item = summary[model]
        rows.append(
            [
                label,
                _number(item["compile"]),
                _number(item["sampling"], 2),
                _number(item["steps"]),
                _number(item["ess"], 0),
                _number(item["ess_per_second"], 1),
                _number(item["ess_per_second_total"], 1),
            ]
        )
    ratios = ", ".join(f"{ratio:.1f}" for ratio in summary["ratios"])
    data = (
        f"{block['sessions']:,} simulated sessions per strategy"
        if "sessions" in block
        else "the bundled data"
    )
    transitions = f" ({block['transitions']:,} transitions)" if "transitions" in block else ""
    return "\n\n".join(
        [
            f"On {data}{transitions}; both models compiled once, then sampled alternately "
            "with the same seeds; medians over seeds.",
            _table(
                [
                    "model",
                    "compile s",
                    "sampling s",
                    "leapfrog steps per draw",
                    "min bulk ESS (drift)",
                    "ESS / sampling s",
                    "ESS / (compile + sampling) s",
                ],
                rows,
            ),
            f"Ratio of ESS per sampling second, production over naive: "
            f"**{summary['ratio']:.1f}x** (median over seeds; per seed {ratios}).",
            _loads(block),
        ]
    )


def sampler_summary(block: dict[str, Any], median: Median) -> dict[str, dict[str, float]]:
    summary = {}
    for name in dict.fromkeys(run["sampler"] for run in block["runs"]):
        mine = [run for run in block["runs"] if run["sampler"] == name]
        total = [(run["compile_seconds"] or 0.0) + run["sampling_seconds"] for run in mine]
        summary[name] = {
            "imports": median([run["import_seconds"] for run in mine]),
            "compile": median([run["compile_seconds"] or float("nan") for run in mine]),
            "sampling": median([run["sampling_seconds"] for run in mine]),
            "total": median(total),
            "ess": median([run["min_ess"] for run in mine]),
            "ess_per_second": median([run["min_ess"] / run["sampling_seconds"] for run in mine]),
            "ess_per_total_second": median(
                [run["min_ess"] / seconds for run, seconds in zip(mine, total, strict=True)]
            ),
            "divergences": median([run["divergences"] for run in mine]),
            "repeats": len(mine),
        }
    return summary


_SAMPLER_LABELS = {
    "nutpie-numba": "nutpie, Numba backend",
    "nutpie-jax": "nutpie, JAX backend",
    "numpyro": "NumPyro (via PyMC)",
    "pymc": "PyMC NUTS",
}


def _sampler_section(block: dict[str, Any], median: Median) -> str:
    summary = sampler_summary(block, median)
    rows = [
        [
            _SAMPLER_LABELS.get(name, name),
            str(item["repeats"]),
            _number(item["imports"]),
            _number(item["compile"]) if item["compile"] == item["compile"] else "in sampling",
            _number(item["sampling"]),
            _number(item["total"]),
            _number(item["ess"], 0),
            _number(item["ess_per_second"], 0),
            _number(item["ess_per_total_second"], 0),
            _number(item["divergences"], 0),
        ]
        for name, item in summary.items()
    ]
    settings = block["settings"]
    return "\n\n".join(
        [
            f"{settings['chains']} chains x ({settings['tune']} tuning + {settings['draws']} "
            "draws), warm compile caches, each run in a fresh process; medians.",
            _table(
                [
                    "sampler",
                    "runs",
                    "import s",
                    "compile s",
                    "sampling s",
                    "compile + sampling s",
                    "min bulk ESS",
                    "ESS / sampling s",
                    "ESS / (compile + sampling) s",
                    "divergences",
                ],
                rows,
            ),
            _loads(block),
        ]
    )


def cold_warm_summary(block: dict[str, Any], median: Median) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for run in block["runs"]:
        name = run["sampler"] + (f"-{run['backend']}" if run["backend"] else "")
        state = "cold" if run["cold"] else "warm"
        summary.setdefault(name, {}).setdefault(state, []).append(run)
    table: dict[str, dict[str, Any]] = {}
    for name, states in summary.items():
        table[name] = {}
        for state, runs in states.items():
            compile_seconds = [run["compile_seconds"] for run in runs]
            known = all(value is not None for value in compile_seconds)
            table[name][state] = {
                "wall": median([run["wall_seconds"] for run in runs]),
                "compile": median(compile_seconds) if known else float("nan"),
                "sampling": median([run["sampling_seconds"] for run in runs]),
                "other": median(
                    [
                        run["wall_seconds"]
                        - (run["compile_seconds"] or 0)
                        - run["sampling_seconds"]
                        for run in runs
                    ]
                ),
                "repeats": len(runs),
            }
        if {"cold", "warm"} <= set(table[name]):
            table[name]["ratio"] = table[name]["cold"]["wall"] / table[name]["warm"]["wall"]
    return table


def _cold_warm_section(block: dict[str, Any], median: Median) -> str:
    summary = cold_warm_summary(block, median)
    rows = []
    for name, states in summary.items():
        for state in ("cold", "warm"):
            if state not in states:
                continue
            item = states[state]
            rows.append(
                [
                    _SAMPLER_LABELS.get(name, name),
                    state,
                    str(item["repeats"]),
                    _number(item["wall"]),
                    _number(item["other"]),
                    _number(item["compile"])
                    if item["compile"] == item["compile"]
                    else "in sampling",
                    _number(item["sampling"]),
                    f"{states['ratio']:.2f}" if state == "warm" and "ratio" in states else "",
                ]
            )
    imports = block.get("imports", [])
    cold = median([item["all_seconds"] for item in imports if item["cold"]])
    warm = median([item["all_seconds"] for item in imports if not item["cold"]])
    settings = block["settings"]
    return "\n\n".join(
        [
            f"`sdebayes sample --seed 1 --json` on the bundled data ({settings['chains']} chains "
            f"x ({settings['tune']} + {settings['draws']})) as a subprocess. *Cold*: `HOME` and "
            "`NUMBA_CACHE_DIR` point at a new empty directory, so PyTensor's compile directory "
            "(`~/.pytensor`, which also holds its Numba cache) starts empty; *warm*: the shared "
            "caches, already filled. *compile* and *sampling* are the seconds recorded in the "
            "output file; *other* is the rest of the wall time (interpreter start, imports, "
            "reading, derived quantities, writing).",
            _table(
                [
                    "sampler",
                    "cache",
                    "runs",
                    "wall s",
                    "other s",
                    "compile s",
                    "sampling s",
                    "cold / warm",
                ],
                rows,
            ),
            f"Importing PyMC, nutpie and sdebayes.fit alone: {cold:.1f} s cold, {warm:.1f} s "
            "warm (medians).",
            _loads(block),
        ]
    )


def _scaling_section(block: dict[str, Any]) -> str:
    rows = [
        [
            f"{run['sessions']:,}",
            f"{run['rows']:,}",
            f"{run['transitions']:,}",
            _number(run["read_seconds"], 2),
            _number(run["statistics_seconds"], 2),
            _number(run["compile_seconds"]),
            _number(run["sampling_seconds"], 2),
            _number(run["min_ess"], 0),
            _number(run["peak_mib"], 0),
        ]
        for run in block["runs"]
    ]
    by_size = {run["sessions"]: run for run in block["runs"]}
    ratios = []
    for small in by_size:
        if small * 100 in by_size:
            ratio = by_size[small * 100]["sampling_seconds"] / by_size[small]["sampling_seconds"]
            ratios.append(f"{small:,} -> {small * 100:,} sessions: {ratio:.2f}x")
    dask = block.get("dask")
    parts = [
        _table(
            [
                "sessions per strategy",
                "versions",
                "transitions",
                "table -> trajectories s",
                "statistics s",
                "compile s",
                "sampling s",
                "min bulk ESS",
                "peak memory MiB",
            ],
            rows,
        ),
        "Sampling time for 100x more sessions: " + "; ".join(ratios) + ".",
    ]
    if dask:
        workers = ", ".join(f"{value:,.0f}" for value in dask["worker_peak_mib"])
        parts.append(
            f"The same {dask['sessions']:,} sessions ({dask['transitions']:,} transitions) as "
            f"{dask['files']} Parquet files, reduced by `distributed_statistics` on a local "
            f"cluster of {dask['workers']} worker processes: statistics in "
            f"{dask['statistics_seconds']:.1f} s, then sampling {dask['sampling_seconds']:.1f} s; "
            f"peak memory {dask['client_peak_mib']:,.0f} MiB in the fitting process "
            f"(before the fit: {dask['client_peak_mib_before_fit']:,.0f} MiB) and "
            f"{workers} MiB in the workers."
        )
    parts.append(_loads(block))
    return "\n\n".join(parts)


def scoring_summary(block: dict[str, Any], median: Median) -> dict[str, float]:
    return {
        mode: block["versions"]
        / median([run["seconds"] for run in block["runs"] if run["mode"] == mode])
        for mode in dict.fromkeys(run["mode"] for run in block["runs"])
    }


def _scoring_section(block: dict[str, Any], median: Median) -> str:
    if "skipped" in block:
        return block["skipped"]
    rates = scoring_summary(block, median)
    single = rates.get("1 worker", float("nan"))
    rows = [
        [
            mode,
            _number(block["versions"] / rate, 2),
            _number(rate, 0),
            f"{rate / single:.2f}",
        ]
        for mode, rate in rates.items()
    ]
    repeats = len(block["runs"]) // max(len(rates), 1)
    return "\n\n".join(
        [
            f"The first {block['versions']:,} versions of the shared real traces, scored "
            f"{repeats} times per mode in alternating order; medians.",
            _table(["mode", "seconds", "versions / s", "vs 1 worker"], rows),
            _loads(block),
        ]
    )


def render(results: dict[str, Any], median: Median) -> str:
    """The whole page, from the results of ``run_benchmarks.py``."""
    from benchmarks.page_text import page

    sections = {
        "machine": _machine(results),
        "ess": _ess_section(results["ess"], median) if "ess" in results else "not measured",
        "ess_large": _ess_section(results["ess_large"], median)
        if "ess_large" in results
        else "not measured",
        "samplers": _sampler_section(results["samplers"], median)
        if "samplers" in results
        else "not measured",
        "cold_warm": _cold_warm_section(results["cold_warm"], median)
        if "cold_warm" in results
        else "not measured",
        "scaling": _scaling_section(results["scaling"]) if "scaling" in results else "not measured",
        "scoring": _scoring_section(results["scoring"], median)
        if "scoring" in results
        else "not measured",
    }
    return page(results, sections, median)
