// Shared by the kernels: kParallelMin, column_sum_accumulate (deterministic sum over rows).
#pragma once
#include <algorithm>
#include <cstdint>

namespace trainer::cpu {

// Below this many elements an OpenMP fork costs more than the loop it would split.
inline constexpr std::int64_t kParallelMin = 1 << 14;

// dst[c] += sum over n of src[n*C + c], for c in [0, C).
// Columns are split into fixed blocks that do not depend on the thread count, and each
// block adds rows in order 0..N-1, so the result is bitwise the same on every call and for
// any number of threads, while the inner loop stays contiguous and vectorizable.
inline void column_sum_accumulate(float* dst, const float* src, std::int64_t N, std::int64_t C) {
  constexpr std::int64_t kBlock = 64;
  const std::int64_t blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin && blocks > 1)
  for (std::int64_t blk = 0; blk < blocks; ++blk) {
    const std::int64_t c0 = blk * kBlock;
    const std::int64_t c1 = std::min(C, c0 + kBlock);
    float acc[kBlock] = {};
    for (std::int64_t n = 0; n < N; ++n) {
      const float* row = src + n * C;
      for (std::int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
    }
    for (std::int64_t c = c0; c < c1; ++c) dst[c] += acc[c - c0];
  }
}

}  // namespace trainer::cpu
