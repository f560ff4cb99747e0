#!/bin/sh
# The SBC run committed in docs/validation.md: the default (hierarchical) model, 300 datasets
# of 20 sessions x 10 transitions per strategy drawn from its priors. Resumable: run it again
# after an interruption and finished simulations are skipped (results/sbc-hierarchical.nc.work).
# About 45 minutes on a busy 2-core machine.
set -e
cd "$(dirname "$0")/.."
mkdir -p results docs/results
nice .venv/bin/sdebayes sbc --model hierarchical --simulations 300 \
    --sessions-per-strategy 20 --steps 10 --seed 20251012 \
    --output results/sbc-hierarchical.nc --json > results/sbc-hierarchical.json
cp results/sbc-hierarchical.nc docs/results/sbc_hierarchical.nc
.venv/bin/python benchmarks/sbc_report.py results/sbc-hierarchical.nc \
    --figures docs/sbc --quantities docs/results/sbc_hierarchical_quantities.csv
