#!/usr/bin/env bash
# `trainer run --nproc N` as a user meets it: workers' lines prefixed by rank, a killed
# worker stops the job within seconds naming the rank, and Ctrl-C leaves no process behind.
set -uo pipefail
src=$1
build=$2
trainer="$build/bin/trainer"
work=$(mktemp -d)
trap 'pkill -KILL -f "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
source "$src/tests/support/shell_checks.sh"

cat > r.yaml <<YAML
model: {plugin: gpt, n_layer: 2, n_head: 2, d_model: 32, vocab: 32, seq_len: 16}
data:
  train: $work/data/train.bin
  val: $work/data/val.bin
  synth: {vocab: 32, branching: 3, train_tokens: 20000, val_tokens: 4000}
train: {steps: 3, micro_batch: 2, global_batch: 8, log_every: 1, eval_every: 3, eval_batches: 1}
output: {dir: $work/run}
YAML

"$trainer" run r.yaml --nproc 2 > out.txt 2>&1
check "a 2-process run succeeds" test $? -eq 0
check "rank 0's lines are prefixed" grep -q "^\[rank 0\] step 3/3" out.txt
check "the job says what it starts" grep -q "starting 2 worker(s)" out.txt
"$trainer" run r.yaml --nproc 3 2> err.txt > /dev/null
check "a mesh that does not divide the batch is refused" test $? -eq 2

# A long run; kill rank 1 and time the job's end.
"$trainer" run r.yaml --nproc 2 train.steps=100000 train.eval_every=100000 output.dir="$work/long" > long.txt 2>&1 &
job=$!
for _ in $(seq 100); do
  grep -q "step 1/" long.txt 2>/dev/null && break
  sleep 0.1
done
victim=$(pgrep -f "$work/long" | while read -r p; do
  tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx TRAINER_RANK=1 && echo "$p"; done | head -1)
check "found rank 1's process" test -n "$victim"
start=$(date +%s)
kill -KILL "$victim"
wait $job
code=$?
elapsed=$(( $(date +%s) - start ))
cat long.txt | grep "^trainer:" || true
check "the job exits non-zero" test "$code" -ne 0
check "within 10 s (took ${elapsed} s)" test "$elapsed" -le 10
check "the supervisor names the rank and the signal" grep -q "rank 1 (pid $victim) was killed by signal SIGKILL" long.txt
sleep 0.5
check "no worker is left" test -z "$(pgrep -f "$work/long")"

# Ctrl-C: SIGINT to the supervisor stops every worker.
"$trainer" run r.yaml --nproc 2 train.steps=100000 train.eval_every=100000 output.dir="$work/int" > int.txt 2>&1 &
job=$!
for _ in $(seq 100); do
  grep -q "step 1/" int.txt 2>/dev/null && break
  sleep 0.1
done
kill -INT $job
wait $job
code=$?
check "Ctrl-C exits 130" test "$code" -eq 130
sleep 0.5
check "Ctrl-C leaves no process behind" test -z "$(pgrep -f "$work/int")"

finish
