#!/usr/bin/env bash
# Checkpoints through `trainer run`: a single-process run stopped and resumed is bitwise the
# uninterrupted run; a dp=4 fsdp checkpoint resumes at dp=2 replicate and dp=3 zero1 with
# the dp=4 run's losses (1e-5 relative); a damaged or uncommitted newest checkpoint falls
# back to the previous good one with a warning naming the file; `checkpoint inspect`.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"
export OMP_NUM_THREADS=1

tiny_gpt_recipe r.yaml <<YAML
train: {steps: 10, micro_batch: 1, global_batch: 12, log_every: 1, eval_every: 100, eval_batches: 1}
checkpoint: {every: 5}
YAML

# --- single process: stopped after step 7 (newest checkpoint: step 6), resumed ----------
single=(r.yaml model.dropout=0.1 train.steps=8 checkpoint.every=3 output.final_parameters=true --quiet)
"$trainer" run "${single[@]}" output.dir="$work/whole"
check "an uninterrupted single-process run succeeds" test $? -eq 0
"$trainer" run "${single[@]}" output.dir="$work/cut" --stop-after=7
check "a run stopped after step 7 succeeds" test $? -eq 0
check "it committed steps 3 and 6" test -d cut/checkpoints/step-000003 -a -d cut/checkpoints/step-000006
check "latest names step 6" test "$(cat cut/checkpoints/latest)" = step-000006
"$trainer" run "${single[@]}" output.dir="$work/cut"
check "the resumed run succeeds" test $? -eq 0
check "metrics.jsonl records the resume at step 6" \
  grep -q "{\"event\":\"resume\",\"step\":6,\"from\":\"$work/cut/checkpoints/step-000006\"}" cut/metrics.jsonl
losses whole/metrics.jsonl > whole.txt
losses cut/metrics.jsonl > cut.txt
check "8 steps each" test "$(wc -l < cut.txt)" -eq 8 -a "$(wc -l < whole.txt)" -eq 8
check "per-step losses are bitwise equal" cmp -s whole.txt cut.txt
check "final parameters are bitwise equal" cmp -s whole/final_parameters.f32 cut/final_parameters.f32

# --- layouts and degrees: dp=4 fsdp saves at step 5 ----------------------------------------
"$trainer" run r.yaml --nproc 4 layout=fsdp output.dir="$work/dp4" --quiet
check "dp=4 fsdp runs 10 steps, saving at 5 and 10" test $? -eq 0 -a -d dp4/checkpoints/step-000005
losses dp4/metrics.jsonl > dp4.txt
for v in "2 replicate" "3 zero1"; do
  set -- $v
  mkdir -p "dp$1/checkpoints"
  cp -r dp4/checkpoints/step-000005 "dp$1/checkpoints/"
  "$trainer" run r.yaml --nproc "$1" layout="$2" output.dir="$work/dp$1" --quiet
  check "dp=$1 $2 resumes from the dp=4 fsdp checkpoint" grep -q '"event":"resume","step":5' "dp$1/metrics.jsonl"
  losses "dp$1/metrics.jsonl" > "dp$1.txt"
  check "dp=$1 $2 steps 6-10 equal the dp=4 continuation within 1e-5" close_losses dp4.txt "dp$1.txt" 6 10 1e-5
done

# --- damaged and uncommitted checkpoints -------------------------------------------------
bad=(r.yaml train.steps=6 checkpoint.every=2 checkpoint.keep=2 output.dir="$work/bad" --quiet)
"$trainer" run "${bad[@]}"
check "keep: 2 leaves two checkpoints" test "$(ls -d bad/checkpoints/step-* | wc -l)" -eq 2
printf '\x55' | dd of=bad/checkpoints/step-000006/rank-00000.bin bs=1 seek=100 conv=notrunc status=none
"$trainer" run "${bad[@]}" train.steps=8 2> err1.txt
check "a corrupted shard is survived" test $? -eq 0
check "the warning names the shard" grep -q "warning: .*bad/checkpoints/step-000006/rank-00000.bin: checksum mismatch" err1.txt
check "the previous good checkpoint (step 4) is loaded" grep -q '"event":"resume","step":4' bad/metrics.jsonl
rm bad/checkpoints/step-000008/manifest.json              # as if the commit never happened
mkdir -p bad/checkpoints/step-000010.tmp-0badc0de          # a save that died mid-way
"$trainer" run "${bad[@]}" train.steps=10 2> err2.txt
check "a missing commit is survived" test $? -eq 0
check "the warning names the missing manifest" grep -q "warning: .*bad/checkpoints/step-000008/manifest.json: missing" err2.txt
check "the warning names the uncommitted temporary" grep -q "warning: .*step-000010.tmp-0badc0de was never committed" err2.txt
check "the previous good checkpoint (step 6) is loaded" grep -q '"event":"resume","step":6' bad/metrics.jsonl
check "stale temporaries are removed" test ! -e bad/checkpoints/step-000010.tmp-0badc0de

# --- inspect --------------------------------------------------------------------------------
"$trainer" checkpoint inspect dp4/checkpoints/step-000005 > inspect.txt
check "inspect succeeds" test $? -eq 0
check "inspect shows step, world and layout" grep -q "saved by 4 rank(s), layout fsdp" inspect.txt
check "inspect lists parameters and optimizer state" grep -q "optimizer/adam_v/wte f32 \[48,32\]" inspect.txt
check "inspect of the folder picks the newest" grep -q "newest intact: step-000010" <("$trainer" checkpoint inspect dp4/checkpoints)
printf '\x55' | dd of=dp4/checkpoints/step-000005/rank-00002.bin bs=1 seek=8 conv=notrunc status=none
"$trainer" checkpoint inspect dp4/checkpoints/step-000005 --verify > /dev/null 2> verify.txt
check "inspect --verify fails on a flipped byte, naming the file" \
  grep -q "step-000005/rank-00002.bin: checksum mismatch" verify.txt

finish
echo "all checks passed"
