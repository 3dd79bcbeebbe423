#!/usr/bin/env bash
# The `trainer` command line as a user meets it: exit codes, error reports that point at
# file:line:column with a suggestion, a broken recipe never starting, validate's output.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"

# --- a recipe with three errors: all reported at once, exit 2, nothing run ---
cat > broken.yaml <<'YAML'
model:
  plugin: gpt
  n_layers: 4
data:
  train: data/train.bin
  synth: {vocab: 32, train_tokens: 20000, val_tokens: 4000}
train:
  steps: ten
  micro_batch: 4
recompute: ful
output: {dir: broken-run}
YAML
"$trainer" run broken.yaml > out.txt 2> err.txt
code=$?
cat err.txt
check "broken recipe exits 2" test "$code" -eq 2
check "unknown key at line:column with suggestion" grep -q "broken.yaml:3:3: error: unknown key 'n_layers'" err.txt
check "did-you-mean for the key" grep -q "did you mean 'n_layer'" err.txt
check "wrong type at line:column" grep -q "broken.yaml:8:3: error: .train.steps. must be an integer, found .ten." err.txt
check "unknown plugin suggests the right one" grep -q "did you mean .full.?" err.txt
check "all errors in one report" grep -q "^3 error(s); nothing was run" err.txt
check "nothing was trained" test ! -e broken-run
check "no data was written" test ! -e data

# --- validate prints the resolved recipe with defaults, and it round-trips ---
cat > good.yaml <<'YAML'
model: {plugin: gpt, n_layer: 1, n_head: 2, d_model: 16, vocab: 32, seq_len: 16}
data:
  train: data/train.bin
  val: data/val.bin
  synth: {vocab: 32, train_tokens: 20000, val_tokens: 4000}
train: {steps: 5, micro_batch: 4, log_every: 1, eval_every: 5, eval_batches: 1}
output: {dir: good-run}
YAML
"$trainer" validate good.yaml model.n_layer=2 > resolved.yaml
check "validate exits 0" test $? -eq 0
cat resolved.yaml
check "defaults filled (optimizer)" grep -q "plugin: adamw" resolved.yaml
check "defaults filled (backend)" grep -q "plugin: cpu" resolved.yaml
check "override applied" grep -q "n_layer: 2" resolved.yaml
check "resolved recipe validates again" "$trainer" validate resolved.yaml > /dev/null

# --- override errors and usage errors ---
"$trainer" validate good.yaml train.micro_batch=3 train.global_batch=8 2> err2.txt > /dev/null
check "batch arithmetic error exits 2" test $? -eq 2
cat err2.txt
check "batch arithmetic message" grep -q "global_batch" err2.txt
"$trainer" run > /dev/null 2>&1
check "run without a recipe is a usage error" test $? -eq 2
"$trainer" frobnicate > /dev/null 2>&1
check "unknown command is a usage error" test $? -eq 2
"$trainer" validate missing.yaml 2> err3.txt > /dev/null
check "missing recipe exits 2" test $? -eq 2
check "missing recipe names the file" grep -q "missing.yaml" err3.txt

# --- a run: the corpus is made, training logs, metrics are written ---
"$trainer" run good.yaml > run.txt
check "run exits 0" test $? -eq 0
cat run.txt
check "a log line per step" grep -q "step 5/5 | loss" run.txt
check "val loss next to the entropy floor" grep -q "entropy floor" run.txt
check "metrics.jsonl has 5 steps" test "$(grep -c '"event":"step"' good-run/metrics.jsonl)" -eq 5
check "resolved recipe recorded" test -s good-run/recipe.yaml

# --- plugins and data ---
"$trainer" plugins > plugins.txt
check "plugins lists the cpu backend" grep -Eq "^backend +cpu" plugins.txt
check "plugins lists the gpt model" grep -Eq "^model +gpt" plugins.txt
printf 'hello world, hello trainer\n%.0s' {1..50} > text.txt
"$trainer" data prepare --out prepared text.txt > prep.txt
check "data prepare exits 0" test $? -eq 0
check "data prepare writes train and val" test -s prepared/train.bin -a -s prepared/val.bin
"$trainer" data synth --out synth --vocab 16 --branching 2 --train-tokens 5000 --val-tokens 2000 > synth.txt
check "data synth reports the floor" grep -q "entropy floor" synth.txt
"$trainer" data synth --out synth --vocab lots 2> /dev/null
check "data synth rejects a bad number" test $? -eq 2

# --- docs/recipes.md embeds `trainer reference` verbatim ---
"$trainer" reference > reference.md
sed -n '/<!-- BEGIN trainer reference -->/,/<!-- END trainer reference -->/p' "$src/docs/recipes.md" | sed '1d;$d' > documented.md
check "docs/recipes.md matches trainer reference (regenerate it if this fails)" diff -u documented.md reference.md

finish
