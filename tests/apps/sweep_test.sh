#!/usr/bin/env bash
# `trainer sweep` as CI uses it: a real sweep of a tiny recipe over recompute policies and
# micro-batch sizes (losses must match the baseline), an expectation that cannot hold, a
# point that cannot run, and a broken sweep file.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"

# The data is written once, before the sweep: concurrent points must not race to create it.
"$trainer" data synth --out data --vocab 32 --branching 2 --train-tokens 20000 --val-tokens 4000 > /dev/null
check "corpus written" test -s data/train.bin -a -s data/val.bin

mkdir recipes sweeps
cat > recipes/tiny.yaml <<'YAML'
model: {plugin: gpt, n_layer: 2, n_head: 2, d_model: 16, vocab: 32, seq_len: 16}
data: {train: data/train.bin, val: data/val.bin}
train: {steps: 4, micro_batch: 4, global_batch: 8, eval_every: 4, eval_batches: 2}
YAML

# --- losses agree across recompute policies and accumulation splits ---
cat > sweeps/recompute.yaml <<'YAML'
base: ../recipes/tiny.yaml
grid:
  recompute: [none, full, selective]
  train.micro_batch: [2, 4]
baseline: {recompute: none, train.micro_batch: 4}
concurrency: 2
output: out/recompute
expect:
  - {metric: step_losses, rtol: 1.0e-5}
  - {metric: activation_peak_bytes, max_ratio: 1.0, where: {recompute: [full, selective]}}
YAML
"$trainer" sweep sweeps/recompute.yaml --dry-run > dry.txt
check "dry run exits 0" test $? -eq 0
cat dry.txt
check "dry run lists 6 points" test "$(grep -c '^\[[0-9]/6\]' dry.txt)" -eq 6
check "dry run shows full override lists" grep -q "train.micro_batch=2 output.dir=out/recompute/recompute=full,train.micro_batch=2 --quiet" dry.txt
check "dry run ran nothing" test ! -e out

start=$(date +%s)
"$trainer" sweep sweeps/recompute.yaml > table.txt 2> progress.txt
code=$?
cat progress.txt table.txt
check "matching sweep exits 0" test "$code" -eq 0
check "6 ok rows" test "$(grep -c '^| recompute=.* | ok |' table.txt)" -eq 6
check "grid order, first key slowest" diff <(grep -o '^| recompute=[a-z]*,train.micro_batch=[0-9]' table.txt) <(printf '| recompute=%s\n' none,train.micro_batch=2 none,train.micro_batch=4 full,train.micro_batch=2 full,train.micro_batch=4 selective,train.micro_batch=2 selective,train.micro_batch=4)
check "losses compared with a measured difference" grep -q '✓ max rel diff' table.txt
check "progress lines as points finish" grep -Eq '^\[[1-6]/6\] recompute=.* done in [0-9.]+ s' progress.txt
check "results.md written" test -s out/recompute/results.md
check "results.csv has a header and 6 rows" test "$(wc -l < out/recompute/results.csv)" -eq 7
check "each point ran in its own folder" test -s "out/recompute/recompute=full,train.micro_batch=2/metrics.jsonl"
check "each point's log captured" test -e "out/recompute/recompute=full,train.micro_batch=2/log.txt"

# --- an expectation that cannot hold, and a point that cannot run ---
cat > sweeps/strict.yaml <<'YAML'
base: ../recipes/tiny.yaml
overrides: [train.steps=2]
grid: {recompute: [none, full]}
points:
  - {model.n_layerz: 3}
concurrency: 2
output: out/strict
expect:
  - {metric: final_val_loss, max: 0.001}
YAML
"$trainer" sweep sweeps/strict.yaml train.seed=7 > strict.txt 2> strict-progress.txt
code=$?
cat strict-progress.txt strict.txt
check "failing sweep exits 1" test "$code" -eq 1
check "FAIL rows name the expectation" test "$(grep -c '| FAIL: #1 final_val_loss max 0.001 |' strict.txt)" -eq 2
check "measured value shown" grep -q '✗ [0-9.]* > 0.001' strict.txt
check "bad override is an ERROR row" grep -q '^| model.n_layerz=3 | ERROR exit 2 |' strict.txt
check "its log's last lines are shown" grep -q "unknown key 'n_layerz'" strict.txt
check "the other points still ran" test -s "out/strict/recompute=full/metrics.jsonl"
check "command-line overrides reach every point" grep -q 'seed: 7' "out/strict/recompute=none/recipe.yaml"

# --- a broken sweep file: exit 2, file:line:column, nothing run ---
cat > sweeps/broken.yaml <<'YAML'
base: ../recipes/tiny.yaml
gird:
  recompute: [none]
points: [{recompute: full}]
expect:
  - {metric: final_loss, mxa: 3}
YAML
"$trainer" sweep sweeps/broken.yaml > /dev/null 2> broken.txt
code=$?
cat broken.txt
check "broken sweep file exits 2" test "$code" -eq 2
check "unknown key at file:line:column" grep -q "sweeps/broken.yaml:2:1: error: unknown key 'gird'" broken.txt
check "did-you-mean" grep -q "did you mean 'grid'?" broken.txt
check "expectation keys checked too" grep -q "sweeps/broken.yaml:6:26: error: unknown key 'mxa'" broken.txt
check "nothing ran" test ! -e runs
"$trainer" sweep sweeps/recompute.yaml --concurrency 0 > /dev/null 2>&1
check "bad --concurrency is a usage error" test $? -eq 2
"$trainer" sweep sweeps/recompute.yaml output.dir=x > /dev/null 2>&1
check "output.dir override is refused" test $? -eq 2
echo "took $(( $(date +%s) - start )) s"

finish
