#!/usr/bin/env bash
# Hang and death detection through `trainer run`: rank 2 hangs before a collective at step
# 20 (collective timeout 5 s): every process has exited within 15 s of the hang and the
# supervisor's diagnosis names rank 2 and the collective; under `restart` the job restarts
# and finishes. A worker stopped with SIGSTOP is noticed within the heartbeat timeout and
# named.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"
export OMP_NUM_THREADS=1

tiny_gpt_recipe r.yaml <<YAML
train: {steps: 40, micro_batch: 1, global_batch: 12, log_every: 10, eval_every: 1000, eval_batches: 1}
checkpoint: {every: 10}
YAML
now() { date +%s.%N; }
# Seconds from the first line matching $2 in file $1 appearing until process $3 exits.
seconds_until_exit() {
  local log=$1 pattern=$2 pid=$3 seen=""
  while kill -0 "$pid" 2> /dev/null; do
    if [ -z "$seen" ] && grep -q "$pattern" "$log"; then seen=$(now); fi
    sleep 0.05
  done
  [ -z "$seen" ] && grep -q "$pattern" "$log" && seen=$(now)
  echo "$seen"
}
hang20='faults=[{step: 20, rank: 2, kind: hang}]'

# --- (a) abort: rank 2 hangs at step 20 --------------------------------------------------------
"$trainer" run r.yaml --nproc 4 watchdog.collective_timeout_s=5 "$hang20" output.dir="$work/hang" --quiet \
  > hang.log 2>&1 &
job=$!
while kill -0 $job 2> /dev/null && ! grep -q "hangs before" hang.log; do sleep 0.05; done
hung_at=$(now)
wait $job
code=$?
ended_at=$(now)
took=$(echo "$ended_at - $hung_at" | bc)
echo "hang at step 20 -> every process exited after $took s"
check "the hung job exits with the collective-failure status 4 ($code)" test "$code" -eq 4
check "every process has exited within 15 s of the hang ($took s)" test "$(echo "$took < 15" | bc)" -eq 1
# Measured from when this script sees the hang's line (polled every 50 ms), so a little
# under 5 s is possible; much less would mean the watchdog fired early.
check "the watchdog waited for the 5 s collective timeout ($took s)" test "$(echo "$took >= 4.8" | bc)" -eq 1
check "no worker is left" bash -c "! pgrep -f '[o]utput.dir=$work/hang' > /dev/null"
check "the diagnosis names rank 2 and the collective it never entered" \
  grep -Eq "trainer: diagnosis: rank 2 never entered all_reduce #[0-9]+ of group '[^']+' at step 20; ranks 0, 1 and 3 were waiting in it" hang.log
check "the diagnosis says what rank 2 did last" grep -q "rank 2's last collective there was all_reduce #[0-9]* at step 19 (completed)" hang.log
check "exactly one diagnosis" test "$(grep -c "trainer: diagnosis:" hang.log)" -eq 1
check "a rank says its collective timed out" grep -Eq "collective timeout: group '[^']+' all_reduce #[0-9]+ .*step 20" hang.log
for r in 0 1 2 3; do
  check "rank $r dumped its flight record" grep -q '"entries"' "hang/flight/rank-$r.json"
done
check "rank 2's record ends with a completed collective" \
  bash -c "grep '\"state\"' '$work/hang/flight/rank-2.json' | tail -1 | grep -q '\"state\": \"completed\"'"
check "rank 0's record ends with the collective it waited in" \
  bash -c "grep '\"state\"' '$work/hang/flight/rank-0.json' | tail -1 | grep -Eq '\"step\": 20, .*\"state\": \"(issued|failed)\"'"

# --- (b) restart: the same hang restarts the job, which resumes and finishes ------------------
"$trainer" run r.yaml --nproc 4 watchdog.collective_timeout_s=5 "$hang20" failure=restart failure.backoff_s=0 \
  output.dir="$work/restart" --quiet > restart.log 2>&1
check "under restart the hung job finishes ($?)" test $? -eq 0
check "it restarted after the collective failure" \
  grep -q "restarting the job (attempt 2 of 4) after rank [013] exited with status 4" restart.log
check "it resumed from step 10 or later" grep -Eq '"event":"resume","step":[12]0,' restart/metrics.jsonl
check "40 steps" grep -q '"event":"summary","steps":40,' restart/metrics.jsonl

# --- (c) a worker stopped with SIGSTOP: named within the heartbeat timeout ---------------------
"$trainer" run r.yaml --nproc 3 train.steps=4000 train.global_batch=3 checkpoint.every=0 \
  watchdog.heartbeat_interval_s=0.2 watchdog.heartbeat_timeout_s=2 output.dir="$work/stop" --quiet \
  > stop.log 2>&1 &
job=$!
# Up to 60 s: on a loaded 2-core machine three workers can take a while to reach step 5.
for _ in $(seq 1200); do
  [ -f "$work/stop/metrics.jsonl" ] && grep -q '"event":"step","step":5,' "$work/stop/metrics.jsonl" && break
  kill -0 $job 2> /dev/null || break
  sleep 0.05
done
victim=""
for p in $(pgrep -P $job); do
  if tr '\0' '\n' < /proc/$p/environ | grep -qx "TRAINER_RANK=1"; then victim=$p; fi
done
check "rank 1's worker was found" test -n "$victim"
# Seen once in CI on the loaded 2-core machine: the job had already ended (status 5) before
# step 5, so no worker was left to stop. Show why, should it recur.
[ -n "$victim" ] || { echo "--- stop.log (the job ended before rank 1 was found):"; tail -20 stop.log; }
kill -STOP "$victim"
stopped_at=$(now)
seen=$(seconds_until_exit stop.log "stopped heartbeating" $job)
wait $job
code=$?
noticed=$(echo "$seen - $stopped_at" | bc)
echo "SIGSTOP of rank 1 -> named after $noticed s (heartbeat timeout 2 s, interval 0.2 s)"
check "the job exits with the heartbeat status 5 ($code)" test "$code" -eq 5
check "the stopped rank is named" \
  grep -q "trainer: rank 1 (pid $victim) stopped heartbeating: none for [0-9.]* s (heartbeat timeout 2.0 s); the process is stopped" stop.log
# The supervisor last saw a beat up to one interval plus one poll (0.2 s each) before the
# stop, and sees the silence up to a poll after the timeout.
check "noticed within the heartbeat timeout, give or take a poll ($noticed s)" test "$(echo "$noticed <= 2.8" | bc)" -eq 1
check "not much before the timeout ($noticed s)" test "$(echo "$noticed >= 1.6" | bc)" -eq 1
check "no worker is left" bash -c "! kill -0 $victim 2> /dev/null"

# --- validation: the watchdog's keys are range-checked -----------------------------------------
"$trainer" validate r.yaml watchdog.collective_timeout_s=0 watchdog.heartbeat_timeout_s=0.3 > /dev/null 2> invalid.txt
check "a zero collective timeout is refused" test $? -eq 2
check "the error names the key" grep -q "collective_timeout_s" invalid.txt
check "a heartbeat timeout under 2 intervals is refused" grep -q "heartbeat_timeout_s 0.3 is less than 2 x heartbeat_interval_s" invalid.txt

finish
echo "all checks passed"
