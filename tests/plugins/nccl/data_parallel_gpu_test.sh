#!/usr/bin/env bash
# dp=2 on two GPUs through the nccl plugin reproduces one GPU's losses and parameters
# (configs/sweeps/data-parallel-gpu.yaml: replicate and fsdp, bucketed and prefetch), in f32
# within f32's tolerance, then in bf16 within bf16's. Skipped without two GPUs (gpu_sweeps.sh).
set -euo pipefail
src=$1
build=$2
source "$src/tests/plugins/nccl/gpu_sweeps.sh"
run_gpu_sweeps 5 data-parallel-gpu data-parallel-gpu-bf16
