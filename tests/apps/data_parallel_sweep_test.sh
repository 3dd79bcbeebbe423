#!/usr/bin/env bash
# The data-parallel acceptance sweep, as users run it in their CI: every layout and overlap
# at dp 2 and 4 reproduces the single-process losses and parameters, with the memory
# savings each layout promises (configs/sweeps/data-parallel.yaml holds the expectations).
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$build/bin/trainer" sweep "$src/configs/sweeps/data-parallel.yaml"
grep -q "25 points: 25 ok, 0 FAIL, 0 ERROR" runs/sweep-data-parallel/results.md
