#!/usr/bin/env bash
# The measured pipeline bubble (idle time per step on each stage) against the schedule's
# prediction, on CPU with gloo: for gpipe, 1f1b and interleaved at pp 2 and 4, the median
# measured bubble of each stage is within 20% of the schedule replayed with the step's
# measured action times and message costs (the `pipeline` event in metrics.jsonl). The
# check can fail: with stages cut unevenly on purpose, the unit-cost prediction (which
# assumes equal stages) misses the measured bubble by far more than 20%, the replay does not.
set -euo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"

# Micro-batches big enough that computing dominates a 2-core machine's scheduling noise, one
# compute thread per process, 4 micro-batches per step (a bubble of 11-43%), 6 steps (the
# first, which pays one-time costs, is not summarised; the figures are medians over steps).
run() {
  "$trainer" run "$src/configs/sweeps/tiny-gpt.yaml" model.n_layer=8 model.d_model=128 model.n_head=4 \
    model.seq_len=64 train.micro_batch=4 train.global_batch=16 train.steps=6 data.val="" backend.threads=1 \
    --quiet "$@" > /dev/null
}

# within FILE KEY_A KEY_B TOLERANCE: every stage's |a - b| / b <= tolerance (prints both).
within() {
  awk -v ka="$2" -v kb="$3" -v tol="$4" '
    function list(key,    s, i) {
      if (!match($0, "\"" key "\":\\[[^]]*\\]")) return "";
      s = substr($0, RSTART + length(key) + 4, RLENGTH - length(key) - 5);
      return s;
    }
    /"event":"pipeline"/ {
      na = split(list(ka), a, ","); nb = split(list(kb), b, ",");
      if (na == 0 || na != nb) { print "  missing " ka " or " kb; exit 1 }
      ok = 1;
      for (i = 1; i <= na; i++) {
        e = (a[i] - b[i]) / b[i]; if (e < 0) e = -e;
        printf "  stage %d: %s %.4f, %s %.4f, relative difference %.3f\n", i - 1, ka, a[i], kb, b[i], e;
        if (e > tol) ok = 0;
      }
      found = 1;
    }
    END { exit (found && ok) ? 0 : 1 }' "$1"
}

for pp in 2 4; do
  for s in gpipe 1f1b interleaved; do
    run parallel.pp=$pp launch.nproc=$pp pipeline=$s output.dir=run-$s-$pp
    check "$s pp $pp: measured bubble within 20% of the replayed schedule on every stage" \
      within run-$s-$pp/metrics.jsonl bubble_measured bubble_predicted_measured_costs 0.2
  done
done

# Stage 0 holds 3 blocks, stage 1 the other 5 and the head: stage 0 idles much more than the
# unit-cost prediction (equal stages) says.
run parallel.pp=2 launch.nproc=2 pipeline=1f1b pipeline.stages=[3] output.dir=run-uneven
check "uneven stages: cut after block 2" grep -q '"chunks":"0-2 | 3-7"' run-uneven/metrics.jsonl
check "uneven stages: measured bubble within 20% of the replayed schedule" \
  within run-uneven/metrics.jsonl bubble_measured bubble_predicted_measured_costs 0.2
status=0
within run-uneven/metrics.jsonl bubble_measured bubble_predicted_unit 0.2 || status=$?
check "uneven stages: the unit-cost prediction is more than 20% off (the comparison can fail)" test "$status" -ne 0
finish
