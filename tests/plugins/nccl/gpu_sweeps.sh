# Sourced by the two-GPU sweep tests (data_parallel_gpu_test.sh, model_parallel_gpu_test.sh)
# with $src and $build set: skips (exit 0, saying so) where the nccl plugin was not built or
# fewer than two GPUs are visible, as on CI; else run_gpu_sweeps POINTS SWEEP... runs each
# configs/sweeps/SWEEP.yaml in a temporary folder and requires all POINTS points ok.
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

run_gpu_sweeps() {
  local points=$1 sweep status
  shift
  for sweep in "$@"; do
    status=0
    "$build/bin/trainer" sweep "$src/configs/sweeps/$sweep.yaml" || status=$?
    cat "runs/sweep-$sweep/results.md" 2>/dev/null || true
    [ "$status" -eq 0 ] || { for f in "runs/sweep-$sweep"/*/log.txt; do echo "== $f"; tail -20 "$f"; done; exit 1; }
    grep -q "$points points: $points ok, 0 FAIL, 0 ERROR" "runs/sweep-$sweep/results.md" || exit 1
  done
}
