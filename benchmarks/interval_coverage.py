"""Coverage of credible intervals on repeated simulated datasets, for the three bundled models.

For each dataset size (sessions per strategy) and replicate, the paper-calibrated scenario
(sdebayes.simulate.paper_scenario: four strategies with different drift matrices) is simulated
with 10 rounds per session, and the hierarchical, pooled and unpooled models are fitted to the
*same* dataset with the default settings of `sdebayes sample` (standardised, centred, nutpie;
2 chains here). For every drift entry, convergence rate and equilibrium the script records
whether the true value lies in the central 50% and 90% posterior intervals (equal-tailed).

This is frequentist coverage at one fixed truth, not SBC: a correct Bayesian model need not
cover exactly at every truth (the prior pulls estimates when data are few), but with
informative data it should come close, and a misspecified model (pooled: one drift matrix for
four different strategies) should not.

Run (about an hour on a busy 2-core machine; resumable, finished fits are kept in
docs/results/coverage.csv.work.csv):

    nice .venv/bin/python benchmarks/interval_coverage.py --replicates 20 \
        --output docs/results/coverage.csv --figure docs/coverage.png

It prints the table pasted into docs/validation.md. tests/test_recovery.py runs one small
fit through the same functions.
"""

import argparse
import csv
import logging
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from sdebayes.data import trajectories_from_frame
from sdebayes.exceptions import DiagnosticWarning
from sdebayes.fit import fit
from sdebayes.sbc import quantity_table
from sdebayes.simulate import paper_scenario, simulate_sessions, true_quantities
from sdebayes.specs import MODEL_NAMES, load_spec

GROUPS = ("drift", "convergence_rate", "equilibrium")
PROBABILITIES = (0.5, 0.9)
COLUMNS = [
    "model",
    "sessions",
    "replicate",
    "quantity",
    "truth",
    "median",
    "width90",
    "covered50",
    "covered90",
    "divergences",
    "max_rhat",
]


def replicate_coverage(
    model: str,
    sessions: int,
    replicate: int,
    steps: int = 10,
    seed: int = 1,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
) -> list[dict]:
    """Fit one model to one simulated dataset and record interval coverage per quantity.

    The dataset depends on (seed, sessions, replicate) only, so every model sees the same one.
    """
    import json

    scenario = paper_scenario()
    data_seed = np.random.SeedSequence(seed, spawn_key=(sessions, replicate))
    table = simulate_sessions(
        scenario, sessions, steps, random_seed=np.random.default_rng(data_seed)
    )
    trajectories = trajectories_from_frame(table, source="<coverage>")
    truth_names, truth = quantity_table(true_quantities(scenario, table)[list(GROUPS)])

    fit_seed = int(data_seed.generate_state(1)[0] % 2**31)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)  # recorded below instead
        tree = fit(
            trajectories,
            load_spec(model),
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=fit_seed,
            progressbar=False,
        )
    diagnostics = json.loads(tree.attrs["diagnostics"])
    names, draws_table = quantity_table(
        tree["posterior"].to_dataset()[list(GROUPS)], ("chain", "draw")
    )
    assert names == truth_names
    flat = draws_table.reshape(-1, len(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN equilibria of singular drift
        quantiles = np.nanquantile(flat, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    rows = []
    for k, name in enumerate(names):
        low90, low50, median, high50, high90 = quantiles[:, k]
        rows.append(
            {
                "model": model,
                "sessions": sessions,
                "replicate": replicate,
                "quantity": name,
                "truth": truth[k],
                "median": median,
                "width90": high90 - low90,
                "covered50": int(low50 <= truth[k] <= high50),
                "covered90": int(low90 <= truth[k] <= high90),
                "divergences": diagnostics["divergences"],
                "max_rhat": diagnostics["max_rhat"],
            }
        )
    return rows


def coverage_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean coverage per model, size and quantity group, with Monte Carlo standard errors.

    The standard error treats replicates as the independent units (quantities within one
    dataset are correlated): the sd of the per-replicate coverage over sqrt(replicates).
    """
    frame = frame.assign(group=frame["quantity"].str.split("[").str[0])
    per_replicate = frame.groupby(["model", "sessions", "group", "replicate"])[
        ["covered50", "covered90"]
    ].mean()
    grouped = per_replicate.groupby(["model", "sessions", "group"])
    summary = grouped.mean()
    errors = grouped.std(ddof=1) / np.sqrt(grouped.size().to_numpy()[:, None])
    summary["se50"], summary["se90"] = errors["covered50"], errors["covered90"]
    summary["replicates"] = grouped.size()
    return summary.reset_index()


def markdown_table(summary: pd.DataFrame) -> str:
    """Rows model x size; columns 50% / 90% coverage of each quantity group."""
    lines = [
        "| model | sessions per strategy | "
        + " | ".join(f"{group} 50% | {group} 90%" for group in GROUPS)
        + " |",
        "|---|---|" + "---|---|" * len(GROUPS),
    ]
    for (model, sessions), block in summary.groupby(["model", "sessions"], sort=False):
        cells = []
        for group in GROUPS:
            row = block[block["group"] == group].iloc[0]
            cells.append(f"{row['covered50']:.2f} ± {row['se50']:.2f}")
            cells.append(f"{row['covered90']:.2f} ± {row['se90']:.2f}")
        lines.append(f"| {model} | {sessions} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_coverage(summary: pd.DataFrame, path: Path) -> None:
    """Coverage against dataset size, one panel per quantity group, lines per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        1, len(GROUPS), figsize=(12, 3.8), sharey=True, layout="constrained"
    )
    for axis, group in zip(axes, GROUPS, strict=True):
        for k, (model, block) in enumerate(summary[summary["group"] == group].groupby("model")):
            color = f"C{k}"
            for probability, style in zip(PROBABILITIES, ("--", "-"), strict=True):
                column = f"covered{round(100 * probability)}"
                error = block[f"se{round(100 * probability)}"]
                axis.errorbar(
                    block["sessions"],
                    block[column],
                    yerr=2 * error,
                    color=color,
                    linestyle=style,
                    marker="o",
                    markersize=3,
                    capsize=2,
                    label=f"{model} {round(100 * probability)}%",
                )
        for probability in PROBABILITIES:
            axis.axhline(probability, color="0.5", linewidth=0.8, linestyle=":")
        axis.set_xscale("log")
        axis.set_xlabel("sessions per strategy (10 rounds each)")
        axis.set_title(group.replace("_", " "))
    axes[0].set_ylabel("share of true values inside the interval")
    axes[0].set_ylim(0, 1.02)
    axes[-1].legend(fontsize=7, ncol=2, loc="lower left")
    figure.suptitle("Coverage of central 50% (dashed) and 90% (solid) intervals, ±2 s.e.")
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODEL_NAMES))
    parser.add_argument("--sizes", default="10,25,50,100,200")
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path("docs/results/coverage.csv"))
    parser.add_argument("--figure", type=Path, default=Path("docs/coverage.png"))
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    work = arguments.output.with_name(arguments.output.name + ".work.csv")
    done = set()
    if work.is_file():
        previous = pd.read_csv(work)
        done = set(zip(previous["model"], previous["sessions"], previous["replicate"], strict=True))
    sizes = [int(size) for size in arguments.sizes.split(",")]
    for model in arguments.models.split(","):  # one model at a time: it compiles once
        for sessions in sizes:
            for replicate in range(arguments.replicates):
                if (model, sessions, replicate) in done:
                    continue
                started = time.perf_counter()
                rows = replicate_coverage(
                    model,
                    sessions,
                    replicate,
                    arguments.steps,
                    arguments.seed,
                    arguments.draws,
                    arguments.tune,
                    arguments.chains,
                )
                new = not work.is_file()
                with work.open("a", newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=COLUMNS)
                    if new:
                        writer.writeheader()
                    writer.writerows(rows)
                print(
                    f"{model} {sessions} #{replicate}: {time.perf_counter() - started:.1f} s",
                    flush=True,
                )

    frame = pd.read_csv(work)
    keep = frame["sessions"].isin(sizes) & (frame["replicate"] < arguments.replicates)
    frame = frame[keep].sort_values(["model", "sessions", "replicate"], kind="stable")
    rounded = frame.copy()
    for column in ("truth", "median", "width90"):
        rounded[column] = rounded[column].map(lambda value: float(f"{value:.4g}"))
    temporary = arguments.output.with_name(arguments.output.name + ".tmp")
    rounded.to_csv(temporary, index=False)
    temporary.replace(arguments.output)
    summary = coverage_summary(frame)
    summary_path = arguments.output.with_name(arguments.output.stem + "_summary.csv")
    summary.round(4).to_csv(summary_path, index=False)
    plot_coverage(summary, arguments.figure)
    print(markdown_table(summary))
    fits = frame.groupby(["model", "sessions", "replicate"]).first()
    print(
        f"\n{len(fits)} fits; {int((fits['divergences'] > 0).sum())} with divergences, "
        f"{int((fits['max_rhat'] > 1.01).sum())} with R-hat > 1.01; "
        f"median 90% width of rates: "
        + ", ".join(
            f"{model} {math.nan if block.empty else block['width90'].median():.3f}"
            for model, block in frame[frame["quantity"].str.startswith("convergence")].groupby(
                "model"
            )
        )
    )


if __name__ == "__main__":
    main()
