#!/usr/bin/env bash
# tp=2 and pp=2 on two GPUs through the nccl plugin reproduce one GPU's losses and parameters
# (configs/sweeps/model-parallel-gpu.yaml in f32, then -bf16.yaml in bf16). Skipped (exit 0,
# saying so) where the nccl plugin was not built or there are fewer than two GPUs, as on CI.
set -euo pipefail
src=$1
build=$2
if [ ! -f "$build/lib/trainer/plugins/trainer_plugin_nccl.so" ]; then
  echo "skipped: the nccl plugin is not built here"; exit 0
fi
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ "${gpus:-0}" -lt 2 ]; then
  echo "skipped: needs 2 GPUs, found ${gpus:-0}"; exit 0
fi
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for sweep in model-parallel-gpu model-parallel-gpu-bf16; do
  status=0
  "$build/bin/trainer" sweep "$src/configs/sweeps/$sweep.yaml" || status=$?
  cat "runs/sweep-$sweep/results.md" 2>/dev/null || true
  [ "$status" -eq 0 ] || { for f in "runs/sweep-$sweep"/*/log.txt; do echo "== $f"; tail -20 "$f"; done; exit 1; }
  grep -q "6 points: 6 ok, 0 FAIL, 0 ERROR" "runs/sweep-$sweep/results.md"
done
