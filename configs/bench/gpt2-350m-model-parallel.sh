#!/usr/bin/env bash
# GPT-2 350M (configs/bench/gpt2-350m-cuda.yaml, bf16) split over several GPUs: one GPU, then
# each layout of RUNS (default: tp=2, then pp=2 with 1f1b, on two GPUs), all with the same
# global batch (GB sequences in micro-batches of MB), STEPS steps each, through `trainer
# run`. A layout is "name override...", runs separated by ';', e.g.
#   RUNS="tp2pp2 launch.nproc=4 parallel.tp=2 parallel.pp=2 pipeline=1f1b; dp4 launch.nproc=4"
# Prints, per run, the largest relative
# difference of the per-step loss from the one-GPU run's, the final loss, and the median over
# steps 3..STEPS of tokens/s (both GPUs together), ms/step, model TFLOP/s per GPU and MFU
# (6·N + 12·L·d·T FLOPs per token, 989 TFLOP/s per GPU), and the caching pool's peak
# (rank 0's log). Run from the repository root:
#   TRAINER=build/bin/trainer bash configs/bench/gpt2-350m-model-parallel.sh
set -euo pipefail
T=${TRAINER:-build/bin/trainer}
STEPS=${STEPS:-50}
MB=${MB:-8}
GB=${GB:-32}
OUTDIR=${OUTDIR:-runs/bench-350m-mp}
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
mkdir -p "$OUTDIR"
run() {  # name [overrides...]
  local name=$1
  shift
  rm -rf "${OUTDIR:?}/$name"
  echo "+ $T run configs/bench/gpt2-350m-cuda.yaml train.micro_batch=$MB train.global_batch=$GB train.steps=$STEPS $* output.dir=$OUTDIR/$name"
  "$T" run configs/bench/gpt2-350m-cuda.yaml "train.micro_batch=$MB" "train.global_batch=$GB" "train.steps=$STEPS" "$@" \
    "output.dir=$OUTDIR/$name" > "$OUTDIR/$name.log" 2>&1 || { tail -30 "$OUTDIR/$name.log"; return 1; }
  grep -m1 -E "step +$STEPS/" "$OUTDIR/$name.log" || tail -3 "$OUTDIR/$name.log"
}
RUNS=${RUNS:-"tp2 launch.nproc=2 parallel.tp=2; pp2-1f1b launch.nproc=2 parallel.pp=2 pipeline=1f1b"}
runs=(gpu1)
run gpu1
IFS=';' read -ra specs <<< "$RUNS"
for spec in "${specs[@]}"; do
  # shellcheck disable=SC2086
  set -- $spec
  name=$1
  shift
  runs+=("$name")
  run "$name" "$@" || true
done
python3 - "$OUTDIR" "${runs[@]}" <<'PY'
import json, re, statistics, sys
out, names = sys.argv[1], sys.argv[2:]
L, d, V, T = 24, 1024, 50304, 1024
n = V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d
flops = 6 * n + 12 * L * d * T
def load(name):
    try:
        return [json.loads(l) for l in open(f"{out}/{name}/metrics.jsonl") if '"event":"step"' in l]
    except FileNotFoundError:
        return None
base = {s["step"]: s["loss"] for s in load("gpu1")}
print(f"{'run':<10} {'GPUs':>4} {'max rel loss diff':>17} {'final loss':>10} {'tokens/s':>10} {'ms/step':>8} {'TFLOP/s/GPU':>11} {'MFU':>6} {'pool peak':>10}")
for name in names:
    steps = load(name)
    if not steps:
        print(f"{name:<10} (no metrics)")
        continue
    recipe = open(f"{out}/{name}/recipe.yaml").read()
    m = re.search(r"nproc: *([0-9]+)", recipe)
    gpus = int(m.group(1)) if m else 1
    diff = max(abs(s["loss"] - base[s["step"]]) / abs(base[s["step"]]) for s in steps if s["step"] in base)
    late = [s for s in steps if s["step"] >= 3]
    tps = statistics.median(s["tokens_per_s"] for s in late)
    ms = statistics.median(s["ms_per_step"] for s in late)
    per_gpu = tps * flops / 1e12 / gpus
    m = re.search(r"peak device memory reserved by the caching pool: ([0-9.]+) GiB", open(f"{out}/{name}.log").read())
    pool = f"{float(m.group(1)):.1f} GiB" if m else "?"
    print(f"{name:<10} {gpus:>4} {diff:>17.2e} {steps[-1]['loss']:>10.4f} {tps:>10.0f} {ms:>8.1f} {per_gpu:>11.1f} {100 * per_gpu / 989:>5.1f}% {pool:>10}"
          f"   ({len(steps)} steps)")
PY
