#!/usr/bin/env bash
# The SDK installs, an optimizer plugin builds out of tree with find_package(Trainer), the
# installed `trainer` lists it, and a recipe trains with it (loss goes down).
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
cmake -S "$src/docs/plugin-example" -B "$work/plugin" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/plugin" > "$work/build.log"

export TRAINER_PLUGIN_PATH="$work/plugin"
"$work/prefix/bin/trainer" plugins | tee "$work/plugins.txt"
grep -E '^optimizer +momentum +1\.0\.0' "$work/plugins.txt"
grep -E '^model +gpt' "$work/plugins.txt"   # the installed plugins are found beside the installed core

mkdir -p "$work/run"
cd "$work/run"
cat > recipe.yaml <<'YAML'
model: {plugin: gpt, n_layer: 1, n_head: 2, d_model: 32, vocab: 16, seq_len: 16}
optimizer: {plugin: momentum, lr: 0.05, momentum: 0.9, decay: constant}
data:
  train: data/train.bin
  val: data/val.bin
  synth: {vocab: 16, branching: 2, train_tokens: 20000, val_tokens: 5000}
train: {steps: 30, micro_batch: 8, log_every: 10, eval_every: 30, eval_batches: 2}
output: {dir: run}
YAML
"$work/prefix/bin/trainer" run recipe.yaml
# grep -m1, not `grep | head -1`: under pipefail, head closing the pipe early kills grep with
# SIGPIPE and the script with it (a flaky failure once the step lines grew past a pipe write).
first=$(grep -m1 '"event":"step"' run/metrics.jsonl | sed 's/.*"loss":\([^,]*\).*/\1/')
last=$(grep '"event":"step"' run/metrics.jsonl | tail -1 | sed 's/.*"loss":\([^,]*\).*/\1/')
echo "first loss $first, last loss $last"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.3) }'
echo "out-of-tree plugin trained: PASS"
