#!/usr/bin/env bash
# The elastic failure policy through `trainer run`: rank 3 of 4 dies at step 25 in every
# attempt; after two attempts it is left out and the job finishes at data-parallel degree 3,
# resuming from the step-20 checkpoint saved at degree 4. Its losses are bitwise those of a
# reference: the same run stopped after step 20 at degree 4, then resumed at degree 3. A
# global batch that 3 ranks cannot split is a clear error instead.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"
export OMP_NUM_THREADS=1

tiny_gpt_recipe r.yaml <<YAML
train: {steps: 40, micro_batch: 1, global_batch: 12, log_every: 10, eval_every: 1000, eval_batches: 1}
output: {final_parameters: true}
checkpoint: {every: 10, keep: 0, async: false}
failure: {plugin: elastic, backoff_s: 0}
YAML
dies='faults=[{step: 25, rank: 3, kind: kill, attempts: all}]'

"$trainer" run r.yaml --nproc 4 "$dies" output.dir="$work/elastic" --quiet > elastic.log 2>&1
check "the job finishes after leaving out the failing rank ($?)" test $? -eq 0
check "rank 3 failed in two attempts" test "$(grep -c "rank 3 (pid [0-9]*) was killed by signal SIGKILL" elastic.log)" -eq 2
check "one plain restart first" grep -q "restarting the job (attempt 2 of 4) after rank 3 exited with status 137" elastic.log
check "then the elastic line" grep -q "trainer: elastic: rank 3 (launch slot 3) failed in consecutive attempts; restarting the job without it at data-parallel degree 3 (attempt 3 of 4)" elastic.log
check "the last attempt ran at dp 3" grep -q '"event":"start","steps":40,"dp":3' elastic/metrics.jsonl
check "and resumed from step 20" test "$(grep -c '"event":"resume","step":20,' elastic/metrics.jsonl)" -eq 2
check "40 steps, final loss finite" grep -Eq '"event":"summary","steps":40,"final_loss":[0-9]' elastic/metrics.jsonl

# The reference: the same first 20 steps at degree 4, then degree 3 from that checkpoint.
"$trainer" run r.yaml --nproc 4 failure=abort output.dir="$work/ref" --stop-after=20 --quiet > ref4.log 2>&1
check "the reference's first 20 steps at dp 4 run" test $? -eq 0
"$trainer" run r.yaml --nproc 3 failure=abort output.dir="$work/ref" --quiet > ref3.log 2>&1
check "the reference resumes at dp 3" test $? -eq 0
losses elastic/metrics.jsonl > elastic.txt
losses ref/metrics.jsonl > ref.txt
check "40 losses each" test "$(wc -l < elastic.txt)" -eq 40 -a "$(wc -l < ref.txt)" -eq 40
check "per-step losses are bitwise the reference's" cmp -s elastic.txt ref.txt
check "final parameters are bitwise the reference's" cmp -s elastic/final_parameters.f32 ref/final_parameters.f32

# A global batch of 8 splits over 4 ranks but not over 3: the job stops with the reason.
"$trainer" run r.yaml --nproc 4 "$dies" train.global_batch=8 output.dir="$work/odd" --quiet > odd.log 2>&1
code=$?
check "a job that cannot shrink exits non-zero ($code)" test "$code" -ne 0
check "it says why" grep -q "trainer: elastic: the job cannot continue on 3 process(es):" odd.log
check "naming the batch rule" grep -q "global_batch 8 is not a multiple of micro_batch 1 × data-parallel degree 3" odd.log

finish
echo "all checks passed"
