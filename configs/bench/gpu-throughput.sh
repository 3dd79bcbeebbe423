#!/usr/bin/env bash
# Single-GPU throughput of the cuda backend: GPT-2 124M (configs/bench/gpt2-124m-cuda.yaml)
# at micro-batch 16 and 32 and GPT-2 350M (configs/bench/gpt2-350m-cuda.yaml) at 16, in
# PRECISION (default bf16), each through `trainer run`. Prints per run the median over steps
# 3..STEPS of tokens/s, ms/step, model TFLOP/s (6·N + 12·L·d·T FLOPs per token), MFU against
# 989 TFLOP/s (H200 dense bf16), the caching pool's peak and nvidia-smi's peak used memory.
# PROFILE=1 adds a run of 124M/16 with backend.profile=true (per-op GPU time table).
# Run from the repository root:
#   TRAINER=build/bin/trainer bash configs/bench/gpu-throughput.sh
set -euo pipefail
T=${TRAINER:-build/bin/trainer}
STEPS=${STEPS:-20}
PRECISION=${PRECISION:-bf16}
OUTDIR=${OUTDIR:-runs/bench-gpu}
mkdir -p "$OUTDIR"
run() {  # name recipe micro-batch [overrides...]
  local name=$1 recipe=$2 mb=$3
  shift 3
  rm -rf "${OUTDIR:?}/$name"
  local smi=$OUTDIR/$name.smi
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$smi" 2>/dev/null &
  local smi_pid=$!
  echo "+ $T run $recipe precision=$PRECISION train.micro_batch=$mb train.global_batch=$mb train.steps=$STEPS $* output.dir=$OUTDIR/$name"
  local rc=0
  "$T" run "$recipe" "precision=$PRECISION" "train.micro_batch=$mb" "train.global_batch=$mb" "train.steps=$STEPS" "$@" \
    "output.dir=$OUTDIR/$name" > "$OUTDIR/$name.log" 2>&1 || rc=$?
  kill "$smi_pid" 2>/dev/null || true
  wait "$smi_pid" 2>/dev/null || true
  if [ "$rc" != 0 ]; then tail -30 "$OUTDIR/$name.log"; return 1; fi
  grep -E "^step +$STEPS/" "$OUTDIR/$name.log" || tail -3 "$OUTDIR/$name.log"
}
run 124m-mb16 configs/bench/gpt2-124m-cuda.yaml 16
run 124m-mb32 configs/bench/gpt2-124m-cuda.yaml 32
run 350m-mb16 configs/bench/gpt2-350m-cuda.yaml 16
if [ "${PROFILE:-0}" = 1 ]; then
  STEPS=8 run 124m-mb16-profile configs/bench/gpt2-124m-cuda.yaml 16 backend.profile=true
  sed -n '/cuda backend profile/,$p' "$OUTDIR/124m-mb16-profile.log"
fi
python3 - "$OUTDIR" "$PRECISION" <<'PY'
import json, re, statistics, sys
out, precision = sys.argv[1], sys.argv[2]
def flops_per_token(L, d, V, T):
    n = V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d  # tied embeddings
    return n, 6 * n + 12 * L * d * T
models = {"124m": (12, 768, 50304, 1024), "350m": (24, 1024, 50304, 1024)}
print(f"precision {precision}")
print(f"{'run':<12} {'params':>8} {'tokens/s':>10} {'ms/step':>8} {'TFLOP/s':>8} {'MFU':>6} {'pool peak':>10} {'in use':>8} {'smi peak':>9}")
for name in ("124m-mb16", "124m-mb32", "350m-mb16"):
    try:
        steps = [json.loads(l) for l in open(f"{out}/{name}/metrics.jsonl") if '"event":"step"' in l]
    except FileNotFoundError:
        print(f"{name:<12} (no metrics)")
        continue
    steps = [s for s in steps if s["step"] >= 3]
    tps = statistics.median(s["tokens_per_s"] for s in steps)
    ms = statistics.median(s["ms_per_step"] for s in steps)
    n, f = flops_per_token(*models[name.split("-")[0]])
    log = open(f"{out}/{name}.log").read()
    m = re.search(r"peak device memory reserved by the caching pool: ([0-9.]+) GiB", log)
    pool = f"{float(m.group(1)):.2f} GiB" if m else "?"
    m = re.search(r"peak in tensors and scratch: ([0-9.]+) GiB", log)
    live = f"{float(m.group(1)):.2f} GiB" if m else "?"
    smi = [int(x) for x in open(f"{out}/{name}.smi").read().split() if x.isdigit()]
    smi_peak = f"{max(smi) / 1024:.1f} GiB" if smi else "?"
    tflops = tps * f / 1e12
    print(f"{name:<12} {n / 1e6:>7.1f}M {tps:>10.0f} {ms:>8.1f} {tflops:>8.1f} {100 * tflops / 989:>5.1f}% {pool:>10} {live:>8} {smi_peak:>9}"
          f"   (median of {len(steps)} steps)")
PY
