#!/usr/bin/env bash
# Run-time health through `trainer run`: a bit flipped in one data-parallel replica is found
# by the replica check (health.sdc_check_every), the diverging rank named (by majority at
# dp=3; at dp=2 the two that disagree), every rank rolls back to the newest checkpoint and
# the run ends bitwise where a clean run ends. Loss spikes (health.spike_ratio) are skipped
# or rolled back; a NaN under on_nonfinite: rollback is rolled back. A clean run with the
# same checks on raises none of them.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"
export OMP_NUM_THREADS=1

# tiny-gpt sized (configs/sweeps/tiny-gpt.yaml), one micro-batch per rank per step.
tiny_gpt_recipe r.yaml <<YAML
train: {steps: 30, micro_batch: 2, global_batch: 6, log_every: 10, eval_every: 1000, eval_batches: 1}
output: {final_parameters: true}
checkpoint: {every: 10}
health: {sdc_check_every: 5, spike_ratio: 2, spike_window: 10}
YAML
same_run() {  # same_run A B: per-step losses and final parameters bitwise equal
  losses "$1/metrics.jsonl" > "$1.losses"
  losses "$2/metrics.jsonl" > "$2.losses"
  check "$2: as many steps as $1" test "$(wc -l < "$2.losses")" -eq "$(wc -l < "$1.losses")"
  check "$2: per-step losses bitwise equal to $1" cmp -s "$1.losses" "$2.losses"
  check "$2: final parameters bitwise equal to $1" cmp -s "$1/final_parameters.f32" "$2/final_parameters.f32"
}

# --- (a) dp=3: rank 1's bit flip at step 12 is found at step 15, rolled back to step 10 ----
"$trainer" run r.yaml --nproc 3 output.dir="$work/clean3" --quiet > clean3.log 2>&1
check "a clean dp=3 run with the checks on succeeds" test $? -eq 0
check "its replica checks ran at steps 5, 10, ..., 30 and agreed" \
  test "$(grep -c '"event":"replica_check","step":[0-9]*,"agree":true' clean3/metrics.jsonl)" -eq 6
check "it has no bad step, corruption or rollback" bash -c "! grep -Eq '\"event\":\"(bad_step|sdc|rollback)\"' '$work/clean3/metrics.jsonl'"
flip12='faults=[{step: 12, rank: 1, kind: bitflip}]'
"$trainer" run r.yaml --nproc 3 "$flip12" output.dir="$work/flip3" --quiet > flip3.log 2>&1
check "the dp=3 run with a bit flip ends 0" test $? -eq 0
check "the flip is logged" grep -q "fault: rank 1 flips bit 22 of '.*' element [0-9]* (.*) before step 12" flip3.log
check "the corruption is found at step 15 and rank 1 named by majority" \
  grep -q "error: silent data corruption at step 15: rank 1 diverges from the majority (ranks 0 and 2) in '" flip3.log
check "metrics.jsonl names the diverging rank" grep -q '"event":"sdc","step":15,"diverging":\[1\]' flip3/metrics.jsonl
check "it rolled back from step 15 to step 10" grep -q '"event":"rollback","from":15,"to":10,' flip3/metrics.jsonl
check "the log says so" grep -q "trainer: step 15: rolled back to step 10 (.*step-000010); replaying" flip3.log
check "the replay's check at step 15 agrees" grep -q '"event":"replica_check","step":15,"agree":true' flip3/metrics.jsonl
same_run clean3 flip3
# Without the check the flip goes unnoticed and changes the result (so the test above means something).
"$trainer" run r.yaml --nproc 3 "$flip12" health.sdc_check_every=0 output.dir="$work/unchecked3" --quiet \
  > unchecked3.log 2>&1
check "without the check the flipped run also ends 0" test $? -eq 0
check "... but its final parameters differ from the clean run's" \
  bash -c "! cmp -s '$work/clean3/final_parameters.f32' '$work/unchecked3/final_parameters.f32'"

# --- (b) dp=2: the two replicas disagree; which one cannot be told; rolled back ----------
two=(r.yaml --nproc 2 train.global_batch=4 train.steps=40 --quiet)
"$trainer" run "${two[@]}" output.dir="$work/clean2" > clean2.log 2>&1
check "a clean dp=2 run with the checks on succeeds" test $? -eq 0
check "it has no bad step, corruption or rollback" bash -c "! grep -Eq '\"event\":\"(bad_step|sdc|rollback)\"' '$work/clean2/metrics.jsonl'"
"$trainer" run "${two[@]}" 'faults=[{step: 12, rank: 0, kind: bitflip}]' output.dir="$work/flip2" > flip2.log 2>&1
check "the dp=2 run with a bit flip ends 0" test $? -eq 0
check "the log says ranks 0 and 1 disagree at step 15" \
  grep -q "error: silent data corruption at step 15: ranks 0 and 1 disagree in '.*'; with two replicas there is no majority" flip2.log
check "no rank is named as the diverging one" grep -q '"event":"sdc","step":15,"diverging":\[\]' flip2/metrics.jsonl
check "it rolled back from step 15 to step 10" grep -q '"event":"rollback","from":15,"to":10,' flip2/metrics.jsonl
same_run clean2 flip2

# --- (c) on_sdc: abort ends the job with status 3 -----------------------------------------
"$trainer" run "${two[@]}" 'faults=[{step: 12, rank: 0, kind: bitflip}]' health.on_sdc=abort \
  output.dir="$work/abort2" > abort2.log 2>&1
code=$?
check "on_sdc: abort exits 3 ($code)" test "$code" -eq 3
check "the abort names the corruption" grep -q "trainer: aborting: silent data corruption at step 15: ranks 0 and 1 disagree" abort2.log

# --- (d) a loss spike at step 33 is skipped: parameters unchanged across it ----------------
spike33='faults=[{step: 33, rank: 1, kind: spike}]'
"$trainer" run "${two[@]}" "$spike33" --stop-after=32 output.dir="$work/spike32" > spike32.log 2>&1
check "a run stopped after step 32 succeeds" test $? -eq 0
"$trainer" run "${two[@]}" "$spike33" --stop-after=33 output.dir="$work/spike33" > spike33.log 2>&1
check "a run stopped after the spike step 33 succeeds" test $? -eq 0
check "the log names step 33 and the reason" \
  grep -q "warning: step 33: update skipped: loss spike: loss [0-9.]* is [0-9.]* times the mean of the last 10 good steps" spike33.log
check "metrics.jsonl records the skipped spike" grep -q '"event":"bad_step","step":33,"reason":"loss spike: .*","action":"skip"' spike33/metrics.jsonl
check "the parameters are bitwise unchanged across step 33" cmp -s spike32/final_parameters.f32 spike33/final_parameters.f32
"$trainer" run "${two[@]}" "$spike33" health.spike_ratio=0 --stop-after=33 output.dir="$work/unguarded33" > /dev/null 2>&1
check "without spike detection, step 33 does change the parameters" \
  bash -c "! cmp -s '$work/spike32/final_parameters.f32' '$work/unguarded33/final_parameters.f32'"

# --- (e) the same spike under on_spike: rollback: back to step 30, bitwise the clean run ---
"$trainer" run "${two[@]}" "$spike33" health.on_spike=rollback output.dir="$work/spike-rb" > spike-rb.log 2>&1
check "the spike run under on_spike: rollback ends 0" test $? -eq 0
check "it rolled back from step 33 to step 30" grep -q '"event":"rollback","from":33,"to":30,' spike-rb/metrics.jsonl
same_run clean2 spike-rb

# --- (f) a NaN at step 15 under on_nonfinite: rollback: back to step 10, bitwise clean ------
"$trainer" run "${two[@]}" 'faults=[{step: 15, rank: 1, kind: nan}]' health.on_nonfinite=rollback \
  output.dir="$work/nan-rb" > nan-rb.log 2>&1
check "the NaN run under on_nonfinite: rollback ends 0" test $? -eq 0
check "the log names step 15 and rank 1" grep -q "warning: step 15: update skipped: rank 1 injected a NaN" nan-rb.log
check "it rolled back from step 15 to step 10" grep -q '"event":"rollback","from":15,"to":10,' nan-rb/metrics.jsonl
same_run clean2 nan-rb

# --- (g) fsdp keeps no replicas: the check says it is off ------------------------------------
"$trainer" run r.yaml --nproc 2 train.global_batch=4 train.steps=2 layout=fsdp output.dir="$work/fsdp" > fsdp.log 2>&1
check "an fsdp run with sdc_check_every succeeds" test $? -eq 0
check "it says the replica check is off" grep -q "the replica check is off" fsdp.log

# --- validation ------------------------------------------------------------------------------
"$trainer" validate r.yaml checkpoint.every=0 > /dev/null 2> no-ckpt.txt
check "a rollback without checkpoints is refused" test $? -eq 2
check "... naming the key" grep -q "health.on_sdc is rollback but checkpoint.every is 0" no-ckpt.txt
"$trainer" validate r.yaml health.spike_ratio=0.5 > /dev/null 2> ratio.txt
check "a spike ratio below 1 is refused" test $? -eq 2
check "... with the reason" grep -q "health.spike_ratio 0.5 would call an ordinary step a spike" ratio.txt
"$trainer" validate r.yaml launch.nproc=2 train.global_batch=4 layout=fsdp 'faults=[{step: 3, kind: bitflip}]' \
  > /dev/null 2> fsdp-flip.txt
check "a bitflip under fsdp is refused" test $? -eq 2
check "... saying fsdp keeps no replicas" grep -q "layout fsdp keeps no replicas" fsdp-flip.txt

finish
