#!/usr/bin/env bash
# Checkpoint faults injected from the recipe: a corrupted shard of the newest checkpoint
# (faults: kind corrupt) and a process killed while its background writer is halfway
# through a shard (kind kill_during_save). Either way the next start loads the previous
# good checkpoint, says why naming the file, and, under `failure: restart`, the run ends
# bitwise where an uninterrupted run ends.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"
export OMP_NUM_THREADS=1

tiny_gpt_recipe r.yaml <<YAML
train: {steps: 10, micro_batch: 2, global_batch: 4, log_every: 1, eval_every: 1000, eval_batches: 1}
output: {final_parameters: true}
checkpoint: {every: 3}
YAML
ck="$work/one/checkpoints"

"$trainer" run r.yaml output.dir="$work/whole" --quiet
check "an uninterrupted run succeeds" test $? -eq 0
losses whole/metrics.jsonl > whole.txt

# --- corrupt: step 8 flips a byte of step 6's shard, then the process dies ----------------
"$trainer" run r.yaml failure=restart failure.backoff_s=0 output.dir="$work/one" \
  'faults=[{step: 8, kind: corrupt}, {step: 8, kind: kill}]' > corrupt.log 2>&1
check "a run whose newest checkpoint was corrupted, then killed, ends 0 under restart" test $? -eq 0
check "the fault names the byte and the shard" \
  grep -q "fault: rank 0 corrupts byte [0-9]* of $ck/step-000006/rank-00000.bin (the checkpoint of step 6)" corrupt.log
check "the restart says step 6 is damaged, naming the shard, and falls back to step 3" \
  grep -q "warning: checkpoint $ck/step-000006 is damaged: $ck/step-000006/rank-00000.bin: checksum mismatch in bytes .*; falling back to $ck/step-000003" corrupt.log
check "metrics.jsonl records the warning" grep -q '"event":"checkpoint_warning","message":"checkpoint .*step-000006 is damaged' one/metrics.jsonl
check "the second attempt resumed after step 3" grep -q '"event":"resume","step":3,' one/metrics.jsonl
losses one/metrics.jsonl > one.txt
check "per-step losses are bitwise the uninterrupted run's" cmp -s whole.txt one.txt
check "final parameters are bitwise the uninterrupted run's" cmp -s whole/final_parameters.f32 one/final_parameters.f32

# --- corrupt at dp=2: rank 1's shard, after rank 0 has committed the save ----------------
"$trainer" run r.yaml --nproc 2 output.dir="$work/two" 'faults=[{step: 7, rank: 1, kind: corrupt}]' \
  --stop-after=8 > two.log 2>&1
check "a dp=2 run stopped after step 8 succeeds" test $? -eq 0
check "rank 1 corrupted its shard of step 6" \
  grep -q "fault: rank 1 corrupts byte [0-9]* of $work/two/checkpoints/step-000006/rank-00001.bin" two.log
"$trainer" checkpoint inspect two/checkpoints > inspect.txt 2>&1
check "checkpoint inspect skips it, naming the file" \
  grep -q "warning: .*step-000006/rank-00001.bin: checksum mismatch" inspect.txt
check "and shows step 3 as the newest intact" grep -q "newest intact: step-000003" inspect.txt
"$trainer" run r.yaml --nproc 2 output.dir="$work/two" --quiet > two-again.log 2>&1
check "the next start succeeds" test $? -eq 0
check "it says why it skipped step 6" grep -q "warning: checkpoint .*step-000006 is damaged: .*rank-00001.bin: checksum" two-again.log
check "it resumed after step 3" grep -q '"event":"resume","step":3,' two/metrics.jsonl

# --- kill_during_save: the writer is killed halfway through the shard of step 6 ----------
"$trainer" run r.yaml output.dir="$work/cut" 'faults=[{step: 6, kind: kill_during_save}]' > cut.log 2>&1
check "the process dies by SIGKILL" test $? -eq 137
check "the fault says how much of which file was written" \
  grep -Eq "fault: rank 0 is killed while writing its shard of the checkpoint of step 6 \([0-9]+ of [0-9]+ bytes of $work/cut/checkpoints/step-000006.tmp-[0-9a-f]+/rank-00000.bin written\)" cut.log
check "step 6 was never committed" test ! -e cut/checkpoints/step-000006
check "latest still names step 3" test "$(cat cut/checkpoints/latest)" = step-000003
part=$(ls cut/checkpoints/step-000006.tmp-*/rank-00000.bin)
full=$(stat -c %s cut/checkpoints/step-000003/rank-00000.bin)
check "a partial shard was left behind ($(stat -c %s "$part") of $full bytes)" test "$(stat -c %s "$part")" -lt "$full"
"$trainer" run r.yaml output.dir="$work/cut" --quiet 2> cut-again.log
check "the next start succeeds" test $? -eq 0
check "it says the save of step 6 was never committed" \
  grep -q "warning: checkpoint $work/cut/checkpoints/step-000006.tmp-[0-9a-f]* was never committed (no rename, .*manifest.json missing); ignoring it" cut-again.log
check "it resumed after step 3" grep -q '"event":"resume","step":3,' cut/metrics.jsonl
check "the partial temporary is gone" test -z "$(ls -d cut/checkpoints/*.tmp-* 2>/dev/null)"

# ... and at dp=2 under restart: rank 1 dies mid-write, the job restarts from step 3.
"$trainer" run r.yaml --nproc 2 failure=restart failure.backoff_s=0 output.dir="$work/cut2" \
  'faults=[{step: 6, rank: 1, kind: kill_during_save}]' > cut2.log 2>&1
check "a dp=2 job whose rank 1 dies mid-save ends 0 under restart" test $? -eq 0
check "rank 1 was killed while writing" grep -q "fault: rank 1 is killed while writing its shard of the checkpoint of step 6" cut2.log
check "the restart says step 6 was never committed" grep -q "warning: checkpoint .*step-000006.tmp-[0-9a-f]* was never committed" cut2.log
check "the second attempt resumed after step 3" grep -q '"event":"resume","step":3,' cut2/metrics.jsonl
if ! grep -q '"event":"resume","step":3,' cut2/metrics.jsonl; then  # seen once in CI: say what happened
  echo "  resume events:"; grep '"event":"resume"' cut2/metrics.jsonl; echo "  log:"; grep -v '\] step ' cut2.log | tail -25
fi
"$trainer" run r.yaml --nproc 2 output.dir="$work/whole2" --quiet > /dev/null 2>&1
losses whole2/metrics.jsonl > whole2.txt
losses cut2/metrics.jsonl > cut2.txt
check "its losses are bitwise the uninterrupted dp=2 run's" cmp -s whole2.txt cut2.txt

# --- recipe checks ------------------------------------------------------------------------
"$trainer" validate r.yaml checkpoint.every=0 'faults=[{step: 2, kind: corrupt}]' > /dev/null 2> v1.txt
check "corrupt without checkpoints is refused" test $? -eq 2
check "saying checkpoint.every is 0" grep -q "a corrupt fault needs checkpoints, but checkpoint.every is 0" v1.txt
"$trainer" validate r.yaml 'faults=[{step: 5, kind: kill_during_save}]' > /dev/null 2> v2.txt
check "kill_during_save at a step without a save is refused" test $? -eq 2
check "naming the steps that save" grep -q "no checkpoint is saved after step 5 (checkpoint.every 3)" v2.txt
finish
