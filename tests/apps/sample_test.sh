#!/usr/bin/env bash
# trainer sample: text from a run's checkpoint. A small model learns a repeating sentence
# (byte-level data from `trainer data prepare`); greedy sampling then continues the
# sentence exactly, sampling is deterministic for a seed and has the requested length, an
# older checkpoint can be chosen, a damaged newest one is skipped with a warning, and
# what cannot be sampled (no run, no checkpoint, a prompt the tokenizer cannot encode) is
# refused with a clear message.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"
export OMP_NUM_THREADS=1

sentence="the quick brown fox jumps over the lazy dog. "
for i in $(seq 400); do printf '%s' "$sentence"; done > text.txt
"$trainer" data prepare --out "$work/data" --val-fraction 0.1 text.txt > /dev/null
check "trainer data prepare writes a byte-level dataset" grep -q '"tokenizer": "bytes"' data/dataset.json

cat > r.yaml <<YAML
model: {plugin: gpt, n_layer: 2, n_head: 2, d_model: 32, vocab: 128, seq_len: 16, dropout: 0.0}
data: {train: $work/data/train.bin, val: $work/data/val.bin}
optimizer: {plugin: adamw, lr: 1.0e-2, warmup_steps: 10}
train: {steps: 200, micro_batch: 8, global_batch: 8, log_every: 100, eval_every: 100, eval_batches: 2}
checkpoint: {every: 100}
output: {dir: $work/run}
YAML
"$trainer" run r.yaml --quiet
check "a 200-step run with checkpoints at 100 and 200 succeeds" test $? -eq 0 -a -d run/checkpoints/step-000200

# Greedy continues the sentence it learned, past the 16-byte context.
"$trainer" sample "$work/run" --prompt "the quick" --tokens 60 --temperature 0 > greedy.txt 2> greedy.err
check "greedy sampling succeeds" test $? -eq 0
check "it says what it loaded" \
  grep -q "sampling 60 tokens from $work/run/checkpoints/step-000200 (after step 200) on backend cpu; tokenizer bytes, temperature 0" greedy.err
expected=$(for i in 1 2 3; do printf '%s' "$sentence"; done)
expected=${expected#the quick}
expected="the quick${expected:0:60}"
check "greedy output is the prompt and the sentence's next 60 bytes" test "$(cat greedy.txt)" = "$expected"

# Temperature 1: deterministic per seed, the requested length.
"$trainer" sample "$work/run" --prompt "over the" --tokens 50 --seed 3 > s3a.txt 2> /dev/null
"$trainer" sample "$work/run" --prompt "over the" --tokens 50 --seed 3 > s3b.txt 2> /dev/null
"$trainer" sample "$work/run" --prompt "over the" --tokens 50 --seed 4 --top-k 5 > s4.txt 2> /dev/null
check "the same seed gives the same text" cmp -s s3a.txt s3b.txt
check "the prompt and 50 bytes and a newline" test "$(wc -c < s3a.txt)" -eq 59 -a "$(wc -c < s4.txt)" -eq 59
check "the output starts with the prompt" test "$(head -c 8 s3a.txt)" = "over the"

# An older checkpoint; a damaged newest one is skipped with a warning.
"$trainer" sample "$work/run" --prompt "the" --tokens 5 --checkpoint 100 > /dev/null 2> old.err
check "--checkpoint 100 loads step 100" grep -q "from $work/run/checkpoints/step-000100 (after step 100)" old.err
printf '\x55' | dd of=run/checkpoints/step-000200/rank-00000.bin bs=1 seek=1000 conv=notrunc status=none
"$trainer" sample "$work/run" --prompt "the" --tokens 5 > /dev/null 2> damaged.err
check "with step 200 damaged, sampling still succeeds" test $? -eq 0
check "it warns naming the damaged shard" \
  grep -q "warning: checkpoint $work/run/checkpoints/step-000200 is damaged: .*rank-00000.bin: checksum mismatch" damaged.err
check "and samples from step 100" grep -q "from $work/run/checkpoints/step-000100 (after step 100)" damaged.err
"$trainer" sample "$work/run" --prompt "the" --checkpoint 200 > /dev/null 2> asked.err
check "asking for the damaged step fails" test $? -eq 1
check "saying why" grep -q "trainer sample: checkpoint $work/run/checkpoints/step-000200 is damaged" asked.err

# Refusals.
"$trainer" sample "$work/run" --prompt "caf$(printf '\xc3\xa9')" > /dev/null 2> enc.err
check "a prompt byte outside the vocabulary is refused (exit 2)" test $? -eq 2
check "naming the byte" grep -q "cannot encode the prompt: the prompt's byte 0xc3 at offset 3 is not in the model's vocabulary of 128 tokens" enc.err
"$trainer" sample "$work/run" --prompt "" > /dev/null 2> empty.err
check "an empty prompt is refused" grep -q "the prompt is empty" empty.err
"$trainer" sample "$work/nowhere" --prompt "x" > /dev/null 2> missing.err
check "a missing run directory fails (exit 1)" test $? -eq 1
check "saying so" grep -q "trainer sample: run directory $work/nowhere does not exist" missing.err
"$trainer" sample "$work" --prompt "x" > /dev/null 2> norecipe.err
check "a folder without recipe.yaml is not a run" grep -q "recipe.yaml does not exist: .* is not a run directory" norecipe.err
"$trainer" run r.yaml train.steps=2 optimizer.warmup_steps=0 checkpoint.every=0 output.dir="$work/nockpt" --quiet
"$trainer" sample nockpt --prompt "x" > /dev/null 2> nockpt.err
check "a run without checkpoints fails (exit 1)" test $? -eq 1
check "saying it saved none" grep -q "no checkpoint folder .*nockpt/checkpoints: the run saved no checkpoint (set checkpoint.every)" nockpt.err
"$trainer" sample "$work/run" --prompt "x" --checkpoint 7 > /dev/null 2> nostep.err
check "a step that was not saved is named with those that were" grep -q "no checkpoint of step 7 .*(steps saved: 100, 200)" nostep.err
"$trainer" sample "$work/run" > /dev/null 2> usage.err
check "no --prompt is a usage error (exit 2)" test $? -eq 2
check "with the usage" grep -q "usage: trainer sample RUN_DIR --prompt TEXT" usage.err
"$trainer" sample "$work/run" --prompt x --temperature -1 > /dev/null 2> temp.err
check "a negative temperature is refused" grep -q -- "--temperature -1: expected a temperature >= 0" temp.err
finish
