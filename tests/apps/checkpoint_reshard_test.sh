#!/usr/bin/env bash
# Checkpoints across tensor- and pipeline-parallel changes: a run saved at step 4 under one
# mesh {dp, tp, pp} (schedule, dp layout) resumes under another and its steps 5-8 give the
# single-process uninterrupted run's losses within 1e-5 relative. Pairs cover a tp change,
# a pp change, both at once, dp layouts under tp and pp, and the tied embedding held by the
# first and last stage (written once, loaded by both). Also what `checkpoint inspect` shows
# of a tp x pp checkpoint, that `trainer validate` no longer refuses checkpoints there, that
# a rollback under tp x pp reloads the checkpoint in process, and that `trainer sample` reads
# a tp x pp checkpoint.
set -uo pipefail
source "$1/tests/support/shell_checks.sh"
scratch_test "$@"
export OMP_NUM_THREADS=1

# 4 blocks (pp 2 x 2 virtual stages), 8 sequences of 1 per step: 4 micro-batches per replica
# at dp 2, enough for 1f1b at pp 2. Tied embeddings (the gpt default).
tiny_gpt_recipe r.yaml <<YAML
train: {steps: 8, micro_batch: 1, global_batch: 8, log_every: 1, eval_every: 100, eval_batches: 1}
checkpoint: {every: 4}
YAML
base=(r.yaml model.n_layer=4 --quiet)

"$trainer" run "${base[@]}" checkpoint.every=0 output.dir="$work/ref" > /dev/null
check "the single-process reference runs 8 steps" test $? -eq 0
losses ref/metrics.jsonl > ref.txt

# mesh NAME: the process count and overrides of a named mesh.
mesh() {
  case $1 in
    one) echo "1" ;;
    tp2) echo "2 parallel.tp=2" ;;
    tp2-sp) echo "2 parallel.tp=2 parallel.sequence_parallel=true" ;;
    pp2-gpipe) echo "2 parallel.pp=2 pipeline=gpipe" ;;
    pp2-interleaved) echo "2 parallel.pp=2 pipeline=interleaved" ;;
    tp2pp2-1f1b-fsdp) echo "4 parallel.tp=2 parallel.pp=2 pipeline=1f1b layout=fsdp" ;;
    dp2tp2-zero2) echo "4 parallel.tp=2 layout=zero2" ;;
    dp2pp2-replicate) echo "4 parallel.pp=2 pipeline=1f1b layout=replicate" ;;
    dp4-fsdp) echo "4 layout=fsdp" ;;
    dp2tp2pp2-zero1) echo "8 parallel.tp=2 parallel.pp=2 pipeline=interleaved layout=zero1" ;;
    *) echo "unknown mesh $1" >&2; exit 1 ;;
  esac
}

# saved NAME: runs 4 steps under mesh NAME, saving at step 4 (once per mesh).
saved() {
  [ -d "save-$1/checkpoints/step-000004" ] && return 0
  set -- "$1" $(mesh "$1")
  local name=$1 nproc=$2
  shift 2
  "$trainer" run "${base[@]}" --nproc "$nproc" "$@" output.dir="$work/save-$name" --stop-after=4 > /dev/null
  check "$name saves at step 4" test -f "save-$name/checkpoints/step-000004/manifest.json"
}

# resumed FROM TO: the checkpoint FROM saved resumes under mesh TO; steps 5-8 equal the reference.
resumed() {
  saved "$1"
  local out="from-$1-to-$2"
  mkdir -p "$out/checkpoints"
  cp -r "save-$1/checkpoints/step-000004" "$out/checkpoints/"
  set -- "$1" "$2" $(mesh "$2")
  local from=$1 to=$2 nproc=$3
  shift 3
  "$trainer" run "${base[@]}" --nproc "$nproc" "$@" output.dir="$work/$out" > /dev/null
  check "$from -> $to: the run resumes at step 4" grep -q '"event":"resume","step":4' "$out/metrics.jsonl"
  losses "$out/metrics.jsonl" > "$out.txt"
  check "$from -> $to: steps 5-8 equal the uninterrupted single process within 1e-5" \
    close_losses ref.txt "$out.txt" 5 8 1e-5
}

resumed tp2pp2-1f1b-fsdp one        # tp and pp to one process
resumed one tp2                     # one process to tp
resumed pp2-gpipe tp2-sp            # pp to tp (sequence parallel)
resumed dp2tp2pp2-zero1 pp2-interleaved  # 8 processes to pp 2 (interleaved)
resumed dp2tp2-zero2 dp2pp2-replicate    # dp layouts under tp to dp layouts under pp
resumed dp2pp2-replicate tp2pp2-1f1b-fsdp  # replicated stages to fsdp shards of tp x pp
resumed dp4-fsdp tp2pp2-1f1b-fsdp   # a dp-only checkpoint to tp x pp

# --- a rollback under tp x pp reloads in process --------------------------------------------
"$trainer" run "${base[@]}" --nproc 4 parallel.tp=2 parallel.pp=2 'faults=[{step: 6, kind: nan, rank: 3}]' \
  health.on_nonfinite=rollback output.dir="$work/rollback" > /dev/null 2>&1
check "a NaN at step 6 under tp 2 x pp 2 rolls back to step 4" \
  grep -q '"event":"rollback","from":6,"to":4' rollback/metrics.jsonl
losses rollback/metrics.jsonl > rollback.txt
check "the replayed steps 5-8 equal the uninterrupted single process within 1e-5" \
  close_losses ref.txt rollback.txt 5 8 1e-5

# --- what the tp x pp checkpoint holds ------------------------------------------------------
ck=save-tp2pp2-1f1b-fsdp/checkpoints/step-000004
"$trainer" checkpoint inspect "$ck" --verify > inspect.txt
check "inspect --verify succeeds" test $? -eq 0
check "inspect shows the mesh" grep -q "saved by 4 rank(s), layout fsdp, mesh dp 1 x tp 2 x pp 2" inspect.txt
check "whole shapes: qkv as in the unsplit model" grep -q "params/h.0.attn.qkv.w f32 \[96,32\]" inspect.txt
check "a row-parallel shard is stored as strided rows" grep -q "x 32 rows, stride 32" inspect.txt
check "every rank wrote a shard" test "$(ls "$ck"/rank-*.bin | wc -l)" -eq 4
# The tied embedding: written once, by the two tp ranks of the first stage, though the last
# stage holds it too (a second writer would fail the commit: chunks must cover it once).
wte_files=$(awk '/^  [^ ]/ { wte = ($1 == "params/wte") } wte && /^    \[/ { for (i = 1; i <= NF; i++) if ($i ~ /^rank-/) print $i }' \
  inspect.txt | sort -u | wc -l)
check "the tied embedding is written by one stage's 2 tp ranks" test "$wte_files" -eq 2
"$trainer" validate r.yaml model.n_layer=4 parallel.tp=2 parallel.pp=2 launch.nproc=4 > validate.txt 2>&1
check "validate accepts checkpoints under tp x pp" test $? -eq 0

# Sampling reads whole tensors in one process: the tp x pp checkpoint gives the tokens the
# single-process checkpoint of the same step gives.
"$trainer" sample save-one --prompt "3 14 15" --tokens 12 > sample-one.txt 2> /dev/null
"$trainer" sample save-tp2pp2-1f1b-fsdp --prompt "3 14 15" --tokens 12 > sample-tp2pp2.txt 2> /dev/null
check "sample from the tp x pp checkpoint succeeds" test $? -eq 0 -a -s sample-tp2pp2.txt
check "it generates the single-process checkpoint's tokens" cmp -s sample-one.txt sample-tp2pp2.txt

finish
echo "all checks passed"
