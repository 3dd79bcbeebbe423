#!/usr/bin/env bash
# tp=2 and pp=2 on two GPUs through the nccl plugin reproduce one GPU's losses and parameters
# (configs/sweeps/model-parallel-gpu.yaml in f32, then -bf16.yaml in bf16; 6 points with the
# baseline). Skipped without two GPUs (gpu_sweeps.sh).
set -euo pipefail
src=$1
build=$2
source "$src/tests/plugins/nccl/gpu_sweeps.sh"
run_gpu_sweeps 6 model-parallel-gpu model-parallel-gpu-bf16
