#!/usr/bin/env bash
# The pipeline-parallel acceptance sweep: every schedule at pp 2 and 4, dp 2 × pp 2 under
# three layouts, tp 2 × pp 2 and dp 2 × tp 2 × pp 2 (8 processes) reproduce the
# single-process losses and final parameters (configs/sweeps/pipeline-parallel.yaml). Then what `trainer plan` prints and refuses, and
# what a pipelined run logs: 1f1b holds at most pp micro-batches in flight per stage,
# gpipe all of them, and the measured bubble is reported next to the predicted one.
set -euo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"

"$trainer" sweep "$src/configs/sweeps/pipeline-parallel.yaml" > sweep.txt || true
check "sweep: 13 points, all within 1e-5 of one process" grep -q "13 points: 13 ok, 0 FAIL, 0 ERROR" runs/sweep-pipeline-parallel/results.md

base="$src/configs/sweeps/tiny-gpt.yaml"
"$trainer" plan "$base" model.n_layer=4 train.global_batch=16 parallel.pp=2 launch.nproc=2 pipeline=1f1b > plan.txt
check "plan: one action list per rank" grep -q "^rank 1: <A0.1 F0.1 B0.1 >G0.1" plan.txt
check "plan: predicted bubble (p-1)/(m+p-1) = 1/9" grep -q "rank 0 11.1%, rank 1 11.1%" plan.txt
check "plan: in flight at most pp" grep -q "at most: rank 0 2, rank 1 1" plan.txt
status=0
"$trainer" plan "$base" model.n_layer=4 train.global_batch=6 parallel.pp=4 launch.nproc=4 pipeline=1f1b > refused.txt 2>&1 || status=$?
check "plan: too few micro-batches for 1f1b refused (exit 2)" test "$status" -eq 2
check "plan: says why" grep -q "1f1b needs at least pp = 4 micro-batches" refused.txt
status=0
"$trainer" plan "$base" parallel.pp=2 launch.nproc=2 pipeline=interleaved > refused2.txt 2>&1 || status=$?
check "plan: fewer blocks than chunks refused (exit 2)" test "$status" -eq 2
check "plan: names the block count" grep -q "the model has 3 blocks" refused2.txt

# Checkpoints under pp (and tp): tests/apps/checkpoint_reshard_test.sh.

for s in 1f1b gpipe; do
  "$trainer" run "$base" model.n_layer=4 train.global_batch=16 parallel.pp=2 launch.nproc=2 pipeline=$s \
    output.dir=run-$s --quiet > /dev/null
done
check "1f1b: at most pp micro-batches in flight per stage" grep -q '"peak_in_flight":\[2,1\]' run-1f1b/metrics.jsonl
check "gpipe: all 8 micro-batches in flight" grep -q '"peak_in_flight":\[8,8\]' run-gpipe/metrics.jsonl
check "bubble measured and predicted are logged" grep -q '"bubble_measured":\[0\.[0-9]*,0\.[0-9]*\],"bubble_predicted_unit":\[0.1111,0.1111\]' run-1f1b/metrics.jsonl
finish
