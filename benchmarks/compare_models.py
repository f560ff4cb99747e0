"""PSIS-LOO comparison of the three bundled models on the paper and the real data.

Fits hierarchical, pooled and unpooled once per dataset (the defaults of `sdebayes sample`:
4 chains x 1,000 draws after 1,000 tuning steps) and compares them with held-out sessions (the
default unit of `sdebayes compare`) and held-out transitions. Equivalent to

    sdebayes compare data/paper_sessions.csv --seed 1 --json
    sdebayes compare data/real_sessions.csv --seed 1 --json      # and with --unit transition

but fits each model once for both units. Run:

    nice .venv/bin/python benchmarks/compare_models.py --output docs/results/compare.json

It prints the tables pasted into docs/validation.md (about 15 minutes, mostly compiling).
"""

import argparse
import json
import time
import warnings
from pathlib import Path

from sdebayes.compare import compare_models
from sdebayes.data import read_trajectories
from sdebayes.datasets import paper_sessions_path
from sdebayes.fit import fit
from sdebayes.specs import MODEL_NAMES

DATA = {
    "paper": paper_sessions_path(),
    "real": Path(__file__).resolve().parents[1] / "data" / "real_sessions.csv",
}


def markdown(document: dict) -> str:
    lines = [
        "| rank | model | elpd | se | elpd_diff | dse | p_loo | weight | max Pareto k | k > "
        f"{document['models'][document['ranking'][0]['model']]['good_k']:.2f} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in document["ranking"]:
        model = document["models"][row["model"]]
        lines.append(
            f"| {row['rank']} | {row['model']} | {row['elpd']:.1f} | {row['se']:.1f} | "
            f"{row['elpd_diff']:.1f} | {row['dse']:.1f} | {row['p']:.1f} | {row['weight']:.2f} | "
            f"{model['pareto_k_max']:.2f} | {model['n_high_pareto_k']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("docs/results/compare.json"))
    arguments = parser.parse_args()

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    results = {}
    for label, path in DATA.items():
        trajectories = read_trajectories(path)
        fits, diagnostics = {}, {}
        for name in MODEL_NAMES:
            started = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fits[name] = fit(trajectories, name, random_seed=arguments.seed, progressbar=False)
            diagnostics[name] = json.loads(fits[name].attrs["diagnostics"])
            print(
                f"{label} {name}: {time.perf_counter() - started:.0f} s, "
                f"{fits[name].attrs['discretization']}, {diagnostics[name]}, "
                f"{[str(item.message)[:100] for item in caught]}",
                flush=True,
            )
        for unit in ("session", "transition"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                document = compare_models(fits, unit=unit)
            document["warnings"] = [str(item.message) for item in caught]
            document["diagnostics"] = diagnostics
            document["data"] = str(path.name)
            results[f"{label}/{unit}"] = document
            print(f"\n{label} data, held-out {unit}s ({document['n_units']}):")
            print(markdown(document))
            for message in document["warnings"]:
                print(f"warning: {message}")
    arguments.output.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {arguments.output}")


if __name__ == "__main__":
    main()
