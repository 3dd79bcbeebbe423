#!/usr/bin/env bash
# On a machine with two GPUs (CUDA, NCCL, yaml-cpp, fmt and Boost headers; no Catch2 or
# OpenBLAS): builds the trainer, its plugins and the nccl tests, runs the nccl plugin tests,
# the dp=2 against dp=1 sweep (tests/plugins/nccl/data_parallel_gpu_test.sh), the tp=2 / pp=2
# against one GPU sweep (model_parallel_gpu_test.sh) and, with
# BENCH=1, the GPT-2 124M dp=2 benchmark (configs/bench/gpt2-124m-dp2.sh). Needs, in
# ${DEB_DIR:-.deb} (git-ignored), Debian's catch2, libopenblas0-pthread,
# libopenblas-pthread-dev and libgfortran5 packages, like tests/plugins/cuda/run_on_gpu_machine.sh.
# Logs go to $OUT (default /tmp/gpu-out).
set -euo pipefail
OUT=${OUT:-/tmp/gpu-out}
BUILD=${BUILD:-/tmp/trainer-build}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0  # NVLink multicast must stay off on shared machines
X=/tmp/trainer-debs
rm -rf "$X"
for f in "${DEB_DIR:-.deb}"/*.deb; do dpkg -x "$f" "$X"; done
OB=$X/usr/lib/x86_64-linux-gnu/openblas-pthread
export LD_LIBRARY_PATH=$OB:$X/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nvidia-smi topo -m; } > "$OUT/env.txt" 2>&1 || true
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
  -DCMAKE_PREFIX_PATH="$X/usr" \
  -DBLA_VENDOR=OpenBLAS -DCMAKE_LIBRARY_PATH="$OB" \
  -DCMAKE_CXX_FLAGS="-isystem $X/usr/include/x86_64-linux-gnu/openblas-pthread" > "$OUT/configure.txt" 2>&1 \
  || { tail -40 "$OUT/configure.txt"; exit 1; }
grep -i "nccl" "$OUT/configure.txt" || true
# Every plugin (a recipe's defaults need several), the app, and the nccl tests only.
plugins=$(ninja -C "$BUILD" -t targets all | grep -oE '^trainer_plugin_[a-z0-9_]+: phony' | cut -d: -f1 | sort -u)
start=$(date +%s)
cmake --build "$BUILD" -j "$(nproc)" --target trainer_app $plugins test_plugins_nccl > "$OUT/build.txt" 2>&1 \
  || { grep -B5 -A20 "error" "$OUT/build.txt" | head -80; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
grep -i "warning" "$OUT/build.txt" | head -20 || true

status=0
# In three parts, each bounded, so that one hang cannot hide the other results.
for part in "[#collectives_test]" "[#failure_test]~[connect]" "[connect]"; do
  (cd "$BUILD/tests" && TRAINER_PLUGIN_PATH= timeout 90 ./test_plugins_nccl -# "$part" --durations yes) \
    >> "$OUT/nccl-tests.txt" 2>&1 || { status=1; echo "FAILED: nccl tests $part" >> "$OUT/nccl-tests.txt"; }
done
grep -E "FAILED|passed|failed|s: " "$OUT/nccl-tests.txt" | tail -30
timeout 300 bash tests/plugins/nccl/data_parallel_gpu_test.sh "$PWD" "$BUILD" > "$OUT/dp-sweep.txt" 2>&1 || status=1
tail -15 "$OUT/dp-sweep.txt"
timeout 300 bash tests/plugins/nccl/model_parallel_gpu_test.sh "$PWD" "$BUILD" > "$OUT/mp-sweep.txt" 2>&1 || status=1
tail -15 "$OUT/mp-sweep.txt"
if [ "${BENCH:-0}" = 1 ]; then
  TRAINER="$BUILD/bin/trainer" timeout 400 bash configs/bench/gpt2-124m-dp2.sh > "$OUT/bench.txt" 2>&1 || status=1
  tail -30 "$OUT/bench.txt"
fi
exit $status
