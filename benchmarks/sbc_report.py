"""Figures and tables of an SBC result for docs/validation.md.

Run after `sdebayes sbc` (see benchmarks/sbc_run.sh):

    .venv/bin/python benchmarks/sbc_report.py results/sbc-hierarchical.nc \
        --figures docs/sbc --quantities docs/results/sbc_hierarchical_quantities.csv

Writes three figures (PREFIX_drift.png, PREFIX_noise.png, PREFIX_derived.png), one CSV row
per quantity, and prints the markdown tables pasted into docs/validation.md.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from sdebayes.sbc import EXPLOSION_THRESHOLD, load_sbc, plot_sbc, save_sbc_plot, summarize_sbc

FIGURES = {
    "drift": ("drift", "drift_population", "drift_spread"),
    "noise": ("intercept", "diffusion_sd", "diffusion_correlation"),
    "derived": (
        "eigenvalues_real",
        "convergence_rate",
        "discrete_stability",
        "equilibrium",
        "loglik",
    ),
}


def variable(name: str) -> str:
    return name.split("[")[0]


def group_table(quantities: dict) -> str:
    lines = [
        "| variable | quantities | min p | p < 0.05 | p < 0.01 | outside 99% band | "
        "50% coverage | 90% coverage |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[str, list[dict]] = {}
    for name, entry in quantities.items():
        groups.setdefault(variable(name), []).append(entry)
    for name, entries in groups.items():
        pvalues = np.array([entry["uniformity_pvalue"] for entry in entries], dtype=float)
        lines.append(
            f"| `{name}` | {len(entries)} | {np.nanmin(pvalues):.3f} | "
            f"{int(np.sum(pvalues < 0.05))} | {int(np.sum(pvalues < 0.01))} | "
            f"{sum(bool(entry['outside_band']) for entry in entries)} | "
            f"{np.mean([entry['coverage_50'] for entry in entries]):.3f} | "
            f"{np.mean([entry['coverage_90'] for entry in entries]):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--figures", type=Path, default=Path("docs/sbc"))
    parser.add_argument("--quantities", type=Path, default=None)
    arguments = parser.parse_args()

    result = load_sbc(arguments.result)
    document = summarize_sbc(result)
    names = list(document["quantities"])
    for suffix, variables in FIGURES.items():
        chosen = [name for name in names if variable(name) in variables]
        path = arguments.figures.with_name(f"{arguments.figures.name}_{suffix}.png")
        save_sbc_plot(plot_sbc(result, quantities=chosen, col_wrap=8), path, dpi=90)
        print(f"wrote {path} ({len(chosen)} panels)")
    if arguments.quantities is not None:
        rows = [{"quantity": name, **entry} for name, entry in document["quantities"].items()]
        pd.DataFrame(rows).to_csv(arguments.quantities, index=False)
        print(f"wrote {arguments.quantities}")

    print(f"\nSettings: {json.dumps(document['settings'])}")
    print(f"Summary (all {document['completed']} finished fits): {document['summary']}")
    print(f"Summary (datasets that did not explode): {document['non_exploding']['summary']}")
    print(f"Fits: {document['fits']}")
    print(f"Failed: {document['failed']}")
    print(f"Total sampling-and-simulation time: {np.nansum(result['seconds']):.0f} s")

    by_strategy = result["max_abs_score_by_strategy"].to_numpy()
    largest = result["max_abs_score"].to_numpy()
    print(
        f"\nExploding datasets (|score| > {EXPLOSION_THRESHOLD:g}): "
        f"{np.mean(largest > EXPLOSION_THRESHOLD):.1%} of datasets, "
        f"{np.nanmean(by_strategy > EXPLOSION_THRESHOLD):.1%} of strategy-datasets, "
        f"beyond 5: {np.nanmean(by_strategy > 5):.1%}; largest {np.nanmax(largest):.3g}"
    )
    truth = result["truth"]
    rates = truth.sel(quantity=[n for n in names if n.startswith("convergence_rate")])
    print(f"Unstable prior drift (rate < 0): {float((rates < 0).mean()):.1%} of strategy draws")

    diverged = result["divergences"].to_numpy() > 0
    spread = truth.sel(quantity="drift_spread[off_diagonal]").to_numpy()
    pit = result["pit"].sel(quantity="drift_spread[off_diagonal]").to_numpy()
    if "drift_spread[off_diagonal]" in names:
        print(
            f"Fits with divergences: {diverged.sum()}; median true off-diagonal spread "
            f"{np.nanmedian(spread[diverged]):.3f} with, {np.nanmedian(spread[~diverged]):.3f} "
            f"without; mean PIT of that spread {np.nanmean(pit[diverged]):.3f} with, "
            f"{np.nanmean(pit[~diverged]):.3f} without"
        )
    print("\n" + group_table(document["quantities"]))
    flagged = {
        name: entry
        for name, entry in document["quantities"].items()
        if entry["outside_band"] or entry["uniformity_pvalue"] < 0.01
    }
    print(f"\nFlagged quantities (p < 0.01 or outside the band): {flagged or 'none'}")


if __name__ == "__main__":
    main()
