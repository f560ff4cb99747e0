"""Rebuild the bundled real-trace data and measure the scorer on it.

Usage (from the repository root)::

    python benchmarks/build_real_sessions.py                 # data/real_sessions.csv
    python benchmarks/build_real_sessions.py --sample        # also data/real_traces_sample.jsonl
    python benchmarks/build_real_sessions.py --measure       # timings and distributions

``--traces`` defaults to ``../shared/data/real-traces/traces.jsonl`` (see its SOURCES.md).
``data/real_sessions.csv`` is exactly what ``sdebayes score TRACES --output
data/real_sessions.csv`` writes; the scores do not depend on the number of workers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from sdebayes._io import atomic_path, check_output_path
from sdebayes.scoring import read_traces, score_versions

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACES = ROOT.parent / "shared" / "data" / "real-traces" / "traces.jsonl"
SAMPLE_SOURCE = "FloridSleeves/LLMDebugger"  # the only Apache-2.0 source: raw code may ship

SAMPLE_SESSIONS = [
    # ten versions; the third (step 2) is not valid Python
    "correctness:ldb-function:gpt-3.5-turbo-0613:humaneval#HumanEval/36",
    # several steps whose scores change
    "correctness:ldb-block:gpt-3.5-turbo-0613:humaneval#HumanEval/138",
    "correctness:ldb-line:gpt-3.5-turbo-0613:humaneval#HumanEval/138",
    # a program with eval (bandit B307)
    "correctness:ldb-block:gpt-3.5-turbo-0613:humaneval#HumanEval/160",
    # the first single-version session of each LDB condition
    "correctness:ldb-block:codellama-34b-instruct:humaneval#HumanEval/0",
    "correctness:ldb-block:debugger-unstated:humaneval:seed=gpt-4-1106-preview#HumanEval/0",
    "correctness:ldb-block:gpt-3.5-turbo-0613:humaneval#HumanEval/0",
    "correctness:ldb-block:gpt-3.5-turbo-0613:humaneval:seed=reflexion-gpt-4#HumanEval/0",
    "correctness:ldb-block:gpt-4-1106-preview:humaneval:seed=reflexion-gpt-4#HumanEval/1",
    "correctness:ldb-block:gpt-4o-2024-05-13:humaneval:seed=reflexion-gpt-4#HumanEval/2",
    "correctness:ldb-block:starcoder:humaneval#HumanEval/0",
    "correctness:ldb-function:gpt-3.5-turbo-0613:humaneval#HumanEval/1",
    "correctness:ldb-line:gpt-3.5-turbo-0613:humaneval#HumanEval/0",
]


def build_sessions(traces: Path, output: Path, workers: int) -> pd.DataFrame:
    """Score every version of ``traces`` and write the trajectory table to ``output``."""
    output = check_output_path(output)
    batch = score_versions(read_traces(traces), workers=workers)
    table = batch.table()
    with atomic_path(output) as temporary:
        table.to_csv(temporary, index=False)
    print(f"{batch.summary()}; wrote {output}", file=sys.stderr)
    return table


def build_sample(traces: Path, output: Path) -> None:
    """Copy the lines of :data:`SAMPLE_SESSIONS` from ``traces``, unchanged, to ``output``."""
    output = check_output_path(output)
    wanted = {session: rank for rank, session in enumerate(SAMPLE_SESSIONS)}
    chosen = []
    with traces.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["session"] in wanted:
                if record["source"] != SAMPLE_SOURCE:
                    raise SystemExit(f"{record['session']}: not from {SAMPLE_SOURCE}")
                chosen.append((wanted[record["session"]], record["step"], line.rstrip("\n")))
    missing = set(wanted) - {SAMPLE_SESSIONS[rank] for rank, _, _ in chosen}
    if missing:
        raise SystemExit(f"sessions not found in {traces}: {sorted(missing)}")
    chosen.sort()
    with atomic_path(output) as temporary:
        temporary.write_text("".join(line + "\n" for _, _, line in chosen), encoding="utf-8")
    print(f"wrote {len(chosen)} versions of {len(wanted)} sessions to {output}", file=sys.stderr)


def measure(traces: Path, workers: list[int]) -> None:
    """Print Markdown tables: throughput per worker count, parse failures, distributions."""
    versions = read_traces(traces)
    print("| workers | seconds | versions/s |\n|---|---|---|")
    batch = None
    for count in workers:
        started = time.perf_counter()
        batch = score_versions(versions, workers=count, progressbar=False)
        seconds = time.perf_counter() - started
        print(f"| {count} | {seconds:.1f} | {len(versions) / seconds:.0f} |")
    assert batch is not None

    table = batch.table()
    statuses = pd.Series([result.status for result in batch.results]).value_counts()
    print(f"\nversions {len(table)}, sessions {table['session'].nunique()}")
    print(f"parse failures {int((~table['parse_ok']).sum())}: {statuses.to_dict()}")
    print(f"timeouts {batch.n_timeouts}, versions with scorer errors {batch.n_errors}")
    failures = table.loc[~table["parse_ok"], "strategy"].value_counts().to_dict()
    print(f"parse failures by strategy {failures}")

    lengths = table.groupby("session").agg(strategy=("strategy", "first"), n=("step", "size"))
    single = lengths[lengths["n"] == 1].groupby("strategy").size()
    total = lengths.groupby("strategy").size()
    print("\n| strategy | sessions | single-version sessions |\n|---|---|---|")
    for strategy in total.index:
        print(f"| {strategy} | {total[strategy]} | {single.get(strategy, 0)} |")

    objectives = list(batch.objectives)
    print("\n| strategy | objective | min | mean | max | sd |\n|---|---|---|---|---|---|")
    for strategy, group in [*table.groupby("strategy"), ("all", table)]:
        for name in objectives:
            column = group[name]
            print(
                f"| {strategy} | {name} | {column.min():.2f} | {column.mean():.2f} | "
                f"{column.max():.2f} | {column.std():.2f} |"
            )
    parsed = table[table["parse_ok"]].groupby("strategy")[objectives].mean()
    print(f"\n| strategy (parsed versions only) | {' | '.join(objectives)} |")
    print("|---" * (len(objectives) + 1) + "|")
    for strategy, means in parsed.iterrows():
        print(f"| {strategy} | " + " | ".join(f"{value:.2f}" for value in means) + " |")


def main() -> None:
    """Parse the command line and run the requested steps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    parser.add_argument("--output", type=Path, default=ROOT / "data" / "real_sessions.csv")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--sample", action="store_true", help="also rebuild the raw sample")
    parser.add_argument("--measure", action="store_true", help="time workers 1 and 2 instead")
    arguments = parser.parse_args()

    if arguments.measure:
        measure(arguments.traces, [1, 2])
        return
    build_sessions(arguments.traces, arguments.output, arguments.workers)
    if arguments.sample:
        build_sample(arguments.traces, ROOT / "data" / "real_traces_sample.jsonl")


if __name__ == "__main__":
    main()
