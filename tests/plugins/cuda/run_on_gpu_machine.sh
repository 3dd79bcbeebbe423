#!/usr/bin/env bash
# Builds the cuda plugin, its tests and their references (cpu, gpt, replicate, recompute none,
# adamw)
# on a GPU machine that has CUDA, yaml-cpp, fmt and Boost headers but no Catch2, OpenBLAS or
# compiled Boost libraries, then runs the tests. Needs, in the repository's .deb/ (git-ignored),
# Debian's catch2, libopenblas0-pthread, libopenblas-pthread-dev and libgfortran5 packages
# (`apt-get download` them on any Debian/Ubuntu machine). Logs go to $OUT (default /tmp/gpu-out).
set -euo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
X=/tmp/trainer-debs
rm -rf "$X"
for f in .deb/*.deb; do dpkg -x "$f" "$X"; done
OB=$X/usr/lib/x86_64-linux-gnu/openblas-pthread
export LD_LIBRARY_PATH=$OB:$X/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nvcc --version | tail -2; } 2>&1 | tee "$OUT/env.txt" || true
cmake -S . -B /tmp/trainer-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
  -DCMAKE_PREFIX_PATH="$X/usr" \
  -DBLA_VENDOR=OpenBLAS -DCMAKE_LIBRARY_PATH="$OB" \
  -DCMAKE_CXX_FLAGS="-isystem $X/usr/include/x86_64-linux-gnu/openblas-pthread" > "$OUT/configure.txt" 2>&1 \
  || { tail -40 "$OUT/configure.txt"; exit 1; }
time cmake --build /tmp/trainer-build -j "$(nproc)" --target trainer_plugin_cpu trainer_plugin_cuda \
  trainer_plugin_gpt trainer_plugin_replicate trainer_plugin_recompute_none trainer_plugin_adamw test_plugins_cuda > "$OUT/build.txt" 2>&1 \
  || { grep -B5 -A20 "error" "$OUT/build.txt" | head -80; exit 1; }
grep -i "warning" "$OUT/build.txt" | grep -i cuda | head -20 || true
cd /tmp/trainer-build/tests
OMP_NUM_THREADS=8 OPENBLAS_NUM_THREADS=1 TRAINER_PLUGIN_PATH= ./test_plugins_cuda --durations yes 2>&1 | tee "$OUT/tests.txt"
