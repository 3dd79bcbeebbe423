#!/usr/bin/env bash
# GPT-2 124M (configs/bench/gpt2-124m-cuda.yaml) data-parallel scaling on two GPUs: one GPU
# at micro-batch MB, then dp=2 (global batch 2×MB, so the same micro-batch per GPU) with
# replicate + bucketed and fsdp + prefetch, all through `trainer run`. Prints, per run, the
# median over steps 3..STEPS of tokens/s (both GPUs together), ms/step, communication and
# exposed communication per step (from the engine's metrics), and the scaling efficiency
# (dp=2 tokens/s over twice the single GPU's), in PRECISION (default bf16). Run from the
# repository root:
#   TRAINER=build/bin/trainer bash configs/bench/gpt2-124m-dp2.sh
set -euo pipefail
T=${TRAINER:-build/bin/trainer}
MB=${MB:-16}
STEPS=${STEPS:-12}
PRECISION=${PRECISION:-bf16}
OUTDIR=${OUTDIR:-runs/bench-dp2}
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
mkdir -p "$OUTDIR"
run() {
  local name=$1
  shift
  rm -rf "${OUTDIR:?}/$name"
  echo "+ $T run configs/bench/gpt2-124m-cuda.yaml precision=$PRECISION train.micro_batch=$MB train.steps=$STEPS $* output.dir=$OUTDIR/$name"
  "$T" run configs/bench/gpt2-124m-cuda.yaml "precision=$PRECISION" "train.micro_batch=$MB" "train.steps=$STEPS" "$@" \
    "output.dir=$OUTDIR/$name" > "$OUTDIR/$name.log" 2>&1 || { tail -30 "$OUTDIR/$name.log"; return 1; }
  grep -E "^step +$STEPS/" "$OUTDIR/$name.log" || tail -3 "$OUTDIR/$name.log"
}
run gpu1 "train.global_batch=$MB"
run dp2-replicate-bucketed launch.nproc=2 "train.global_batch=$((2 * MB))" layout=replicate overlap=bucketed
run dp2-fsdp-prefetch launch.nproc=2 "train.global_batch=$((2 * MB))" layout=fsdp overlap=prefetch
python3 - "$OUTDIR" <<'EOF'
import json, statistics, sys
out = sys.argv[1]
def medians(name):
    steps = [json.loads(l) for l in open(f"{out}/{name}/metrics.jsonl") if '"event":"step"' in l]
    steps = [s for s in steps if s["step"] >= 3]
    m = lambda k: statistics.median(s[k] for s in steps)
    return {k: m(k) for k in ("tokens_per_s", "ms_per_step", "comm_ms", "exposed_comm_ms")}, len(steps)
base, _ = medians("gpu1")
print(f"{'run':<24} {'tokens/s':>10} {'ms/step':>8} {'comm ms':>8} {'exposed ms':>10} {'efficiency':>10}")
for name in ("gpu1", "dp2-replicate-bucketed", "dp2-fsdp-prefetch"):
    r, n = medians(name)
    eff = r["tokens_per_s"] / (2 * base["tokens_per_s"]) if name != "gpu1" else 1.0
    print(f"{name:<24} {r['tokens_per_s']:>10.0f} {r['ms_per_step']:>8.1f} {r['comm_ms']:>8.1f} "
          f"{r['exposed_comm_ms']:>10.1f} {100 * eff:>9.1f}%   (median of {n} steps)")
EOF
