#!/usr/bin/env bash
# Failure handling through `trainer run`: a worker killed mid-run under `failure: restart`
# is restarted, resumes from its checkpoint, and ends bitwise where an uninterrupted run
# ends; under `abort` the job fails naming the rank; an injected NaN skips exactly its
# step's update; three bad steps in a row abort the run with status 3.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"
export OMP_NUM_THREADS=1

# tiny-gpt sized (configs/sweeps/tiny-gpt.yaml), one micro-batch per rank per step.
tiny_gpt_recipe r.yaml <<YAML
train: {steps: 60, micro_batch: 2, global_batch: 4, log_every: 10, eval_every: 1000, eval_batches: 1}
output: {final_parameters: true}
checkpoint: {every: 10}
YAML
kill37='faults=[{step: 37, rank: 1, kind: kill}]'

# --- (a) restart: killed at step 37, resumed from step 30, bitwise the uninterrupted run --
"$trainer" run r.yaml --nproc 2 failure=restart output.dir="$work/whole" --quiet > whole.log 2>&1
check "an uninterrupted dp=2 run succeeds" test $? -eq 0
"$trainer" run r.yaml --nproc 2 failure=restart failure.backoff_s=0 "$kill37" output.dir="$work/restart" \
  > restart.log 2>&1
check "the job killed at step 37 under failure: restart ends 0" test $? -eq 0
check "the log says rank 1 was killed" grep -q "rank 1 (pid [0-9]*) was killed by signal SIGKILL" restart.log
check "the log says it restarted" \
  grep -q "trainer: restarting the job (attempt 2 of 4) after rank 1 exited with status 137" restart.log
# Normally step 30; an asynchronous save still in flight at the kill falls back further.
check "the second attempt resumed from a checkpoint" grep -Eq '"event":"resume","step":[123]0,' restart/metrics.jsonl
losses whole/metrics.jsonl > whole.txt
losses restart/metrics.jsonl > restart.txt
check "60 steps each" test "$(wc -l < restart.txt)" -eq 60 -a "$(wc -l < whole.txt)" -eq 60
check "per-step losses are bitwise equal" cmp -s whole.txt restart.txt
check "final parameters are bitwise equal" cmp -s whole/final_parameters.f32 restart/final_parameters.f32

# --- (a') one process under restart runs under a supervisor too; synchronous saves -------
one=(r.yaml train.steps=20 checkpoint.every=5 checkpoint.async=false failure=restart failure.backoff_s=0 --quiet)
"$trainer" run "${one[@]}" output.dir="$work/one-whole" > /dev/null 2>&1
check "an uninterrupted single-process run succeeds" test $? -eq 0
"$trainer" run "${one[@]}" 'faults=[{step: 17, kind: kill}]' output.dir="$work/one" > one.log 2>&1
check "a single process killed at step 17 is restarted and ends 0" test $? -eq 0
check "the log says rank 0 was restarted" grep -q "restarting the job (attempt 2 of 4) after rank 0" one.log
check "it resumed after step 15" grep -q '"event":"resume","step":15,' one/metrics.jsonl
losses one-whole/metrics.jsonl > one-whole.txt
losses one/metrics.jsonl > one.txt
check "20 steps" test "$(wc -l < one.txt)" -eq 20
check "its losses are bitwise the uninterrupted run's" cmp -s one-whole.txt one.txt
check "its final parameters are bitwise the uninterrupted run's" cmp -s one-whole/final_parameters.f32 one/final_parameters.f32

# --- (b) abort: the same kill ends the job, naming rank 1 ----------------------------------
"$trainer" run r.yaml --nproc 2 failure=abort "$kill37" output.dir="$work/abort" --quiet > abort.log 2>&1
code=$?
check "the killed job under failure: abort exits non-zero ($code)" test "$code" -ne 0
check "the log names rank 1" grep -q "rank 1 (pid [0-9]*) was killed by signal SIGKILL" abort.log
check "it did not restart" test "$(grep -c "restarting the job" abort.log)" -eq 0

# --- (c) a NaN on rank 1 at step 15: that update is skipped -------------------------------
nan15='faults=[{step: 15, rank: 1, kind: nan}]'
"$trainer" run r.yaml --nproc 2 checkpoint.every=0 "$nan15" output.dir="$work/nan14" --stop-after=14 --quiet \
  > nan14.log 2>&1
check "a run stopped after step 14 succeeds" test $? -eq 0
"$trainer" run r.yaml --nproc 2 checkpoint.every=0 "$nan15" output.dir="$work/nan15" --stop-after=15 --quiet \
  > nan15.log 2>&1
check "a run stopped after the NaN step 15 succeeds" test $? -eq 0
check "the parameters are bitwise unchanged across step 15" cmp -s nan14/final_parameters.f32 nan15/final_parameters.f32
check "the log names step 15 and rank 1" \
  grep -q "warning: step 15: update skipped: rank 1 injected a NaN into its gradient" nan15.log
check "metrics.jsonl records the bad step" grep -q '"event":"bad_step","step":15' nan15/metrics.jsonl
check "step 15 is marked skipped" grep -q '"step":15,.*"skipped":true' nan15/metrics.jsonl
"$trainer" run r.yaml --nproc 2 checkpoint.every=0 output.dir="$work/clean15" --stop-after=15 --quiet > /dev/null 2>&1
check "without the fault, step 15 does change the parameters" \
  bash -c "! cmp -s '$work/nan14/final_parameters.f32' '$work/clean15/final_parameters.f32'"

# --- (d) NaNs at steps 15, 16, 17: the run aborts with status 3 ----------------------------
"$trainer" run r.yaml --nproc 2 checkpoint.every=0 output.dir="$work/bad" --quiet \
  'faults=[{step: 15, rank: 1, kind: nan}, {step: 16, rank: 1, kind: nan}, {step: 17, rank: 0, kind: nan}]' \
  > bad.log 2>&1
code=$?
check "three bad steps in a row exit 3 ($code)" test "$code" -eq 3
check "the abort message names the steps" \
  grep -q "trainer: aborting: 3 consecutive steps with non-finite gradients (steps 15-17)" bad.log
check "the supervisor names the status" grep -q "exited with status 3" bad.log

# --- validation: faults are checked strictly ------------------------------------------------
"$trainer" validate r.yaml 'faults=[{step: 3, kind: melt, when: 2}]' > /dev/null 2> invalid.txt
check "an unknown fault kind and key are refused" test $? -eq 2
check "the kind error lists the kinds" grep -q "'faults\[0\].kind' must be one of" invalid.txt
check "the unknown key is named" grep -q "unknown key 'when' in section 'faults\[0\]'" invalid.txt

finish
echo "all checks passed"
