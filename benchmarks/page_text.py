"""The prose of docs/benchmarks.md around the measured tables: purpose, targets, verdicts.

Every verdict is computed from ``benchmarks/results.json`` when the page is rendered, so the
text cannot claim a target the figures do not meet.
"""

from __future__ import annotations

from typing import Any

from benchmarks.render_benchmarks import Median, cold_warm_summary, ess_summary

__all__ = ["page"]

TITLES = {
    "machine": "The machine",
    "ess": "Effective samples per second: production against naive model",
    "ess_large": "The same comparison on ten times more data",
    "samplers": "Samplers on the production model",
    "cold_warm": "Cold and warm runs of `sdebayes sample`",
    "scaling": "Scaling with the number of sessions",
    "scoring": "Scoring throughput",
}

INTRODUCTION = """\
# Benchmarks

What sdebayes costs, measured on one machine and in one run of

    nice .venv/bin/python benchmarks/run_benchmarks.py

(about an hour on two cores; `--only SECTION` re-measures one section, `--render` rewrites this
page from `benchmarks/results.json`). Alternatives that are compared with each other run side
by side: interleaved, each in a fresh process where imports, compilation or memory matter, with
the same seeds. Ratios are therefore more trustworthy than absolute seconds, which depend on
the machine's load (reported per section). Sampling is 4 chains x (1,000 tuning + 1,000
draws) unless a section says otherwise; the ESS is the minimum bulk ESS over the entries of
the (standardised) drift matrices."""


def _verdict(met: bool | None) -> str:
    if met is None:
        return "not measured"
    return "met" if met else "**not met**"


def _ess_target(results: dict[str, Any], median: Median) -> list[str]:
    rows = []
    for name, where in (("ess", "bundled data"), ("ess_large", "10x the bundled data")):
        if name not in results:
            continue
        ratio = ess_summary(results[name], median)["ratio"]
        rows.append(
            f"| ESS/s production / naive >= 20, {where} | {ratio:.1f}x | {_verdict(ratio >= 20)} |"
        )
    return rows


def _scaling_target(results: dict[str, Any]) -> list[str]:
    if "scaling" not in results:
        return []
    by_size = {run["sessions"]: run for run in results["scaling"]["runs"]}
    rows = []
    for small, run in by_size.items():
        large = by_size.get(small * 100)
        if large is None:
            continue
        ratio = large["sampling_seconds"] / run["sampling_seconds"]
        rows.append(
            f"| sampling time, {small * 100:,} / {small:,} sessions per strategy <= 1.5 | "
            f"{ratio:.2f}x | {_verdict(ratio <= 1.5)} |"
        )
    return rows


def _cold_warm_target(results: dict[str, Any], median: Median) -> list[str]:
    if "cold_warm" not in results:
        return []
    summary = cold_warm_summary(results["cold_warm"], median).get("nutpie-numba", {})
    if "ratio" not in summary:
        return []
    ratio = summary["ratio"]
    return [
        f"| default `sdebayes sample`, cold / warm wall time >= 3 | {ratio:.2f}x | "
        f"{_verdict(ratio >= 3)} |"
    ]


def _targets(results: dict[str, Any], median: Median) -> str:
    rows = [
        *_ess_target(results, median),
        *_scaling_target(results),
        *_cold_warm_target(results, median),
    ]
    header = "| target | measured | verdict |\n|---|---|---|"
    return "## Targets\n\n" + "\n".join([header, *rows])


def page(results: dict[str, Any], sections: dict[str, str], median: Median) -> str:
    """Assemble the page from the rendered sections and the verdicts on the targets."""
    quick = (
        "\n\n**These figures come from `--quick` settings (a test of the harness), not from a "
        "real measurement.**"
        if results.get("quick")
        else ""
    )
    command = f"\n\nThis page was produced by `{results.get('command', '?')}`.{quick}"
    parts = [INTRODUCTION + command, _targets(results, median)]
    parts += [f"## {TITLES.get(name, name)}\n\n{text}" for name, text in sections.items()]
    parts.append(DISCUSSION)
    return "\n\n".join(parts) + "\n"


DISCUSSION = """\
## Reading the figures

* **Why the production model is faster.** Its likelihood uses per-strategy sufficient
  statistics of the transitions (see docs/model.md), so one gradient costs the same for 400
  sessions or 400,000; the naive model evaluates one multivariate normal density per
  transition. The two formulations sample the same posterior with a similar number of
  leapfrog steps per draw on standardised data, so the gap is the cost per gradient, and it
  grows with the number of transitions: compare the bundled data with the section on ten
  times more data.
* **Where a run's time goes.** On the bundled data sampling takes seconds; compiling the
  model with Numba takes far longer, and most of it is paid again by every new process
  because nutpie's compiled entry points are only partly cached on disk. `--backend jax`
  compiles in a few seconds but samples several times slower; it pays off for a single fit on
  a machine whose cache is cold, not for repeated fits (SBC, model comparison, notebooks),
  which reuse one compiled Numba model within a process.
* **Scaling.** With sufficient statistics, more sessions cost time only in reading the table
  and reducing it (linear, and parallel on a Dask cluster, see docs/distributed.md); the
  sampler's time stays flat."""
