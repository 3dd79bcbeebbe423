#!/usr/bin/env bash
# The tensor-parallel acceptance sweep: tp 2 and 4, sequence parallel on and off, and dp 2 ×
# tp 2 (replicate, zero2, fsdp) reproduce the single-process losses, gradient norms and
# parameters, each rank holding 1/tp of the split weights (configs/sweeps/tensor-parallel.yaml);
# and the recipe checks that refuse what tensor parallel cannot split.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"

"$trainer" sweep "$src/configs/sweeps/tensor-parallel.yaml"
check "sweep: every point within tolerance" grep -q "10 points: 10 ok, 0 FAIL, 0 ERROR" runs/sweep-tensor-parallel/results.md

recipe="$src/configs/sweeps/tiny-gpt-tp.yaml"
out=$("$trainer" validate "$recipe" launch.nproc=5 parallel.tp=5 2>&1); rc=$?
check "tp 5: refused with exit 2" test "$rc" -eq 2
for key in model.n_head model.d_model model.vocab; do
  check "tp 5: the error names $key" grep -q "$key .* is not divisible by parallel.tp 5" <<<"$out"
done
out=$("$trainer" validate "$recipe" launch.nproc=2 parallel.tp=2 parallel.sequence_parallel=true model.dropout=0.1 2>&1); rc=$?
check "sequence parallel with dropout: refused with exit 2" test "$rc" -eq 2
check "sequence parallel with dropout: the error names model.dropout" \
  grep -q "model.dropout 0.1 with parallel.sequence_parallel" <<<"$out"
out=$("$trainer" validate "$recipe" launch.nproc=2 parallel.tp=2 2>&1); rc=$?
check "tp 2: valid" test "$rc" -eq 0
finish
