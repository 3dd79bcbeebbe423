// Elementwise ops: residual_forward, dropout_apply (forward and backward), axpby, sum_squares.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/common.hpp"
#include "trainer/rng.hpp"

namespace trainer::cpu {

inline void residual_forward(float* out, const float* a, const float* b, std::int64_t N) {
#pragma omp parallel for simd schedule(static) if (N >= kParallelMin)
  for (std::int64_t i = 0; i < N; ++i) out[i] = a[i] + b[i];
}

// out[i] = inp[i] / (1 - p) if rng_uniform(key, i) >= p, else 0. The mask is a pure function
// of (key, i), so forward and backward call this same function. out may alias inp.
inline void dropout_apply(float* out, const float* inp, float p, RngKey key, std::int64_t N) {
  if (p == 0.0f) {
    if (out != inp) std::memmove(out, inp, static_cast<std::size_t>(N) * sizeof(float));
    return;
  }
  const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (N >= kParallelMin)
  for (std::int64_t i = 0; i < N; ++i) {
    const bool keep = rng_uniform(key, static_cast<std::uint64_t>(i)) >= p;
    out[i] = keep ? inp[i] * scale : 0.0f;
  }
}

// y = a x + b y. With b == 0, y is not read (BLAS convention), so uninitialised or NaN
// contents of y do not leak into the result.
inline void axpby(float* y, float a, const float* x, float b, std::int64_t N) {
  if (b == 0.0f) {
#pragma omp parallel for simd schedule(static) if (N >= kParallelMin)
    for (std::int64_t i = 0; i < N; ++i) y[i] = a * x[i];
    return;
  }
#pragma omp parallel for simd schedule(static) if (N >= kParallelMin)
  for (std::int64_t i = 0; i < N; ++i) y[i] = a * x[i] + b * y[i];
}

// Chunks of fixed size (independent of the thread count) are summed in double, and the
// partial sums are added in chunk order: the same bits for any thread count or timing.
inline double sum_squares(const float* x, std::int64_t N) {
  constexpr std::int64_t kChunk = 1 << 13;
  const std::int64_t chunks = (N + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::int64_t k = 0; k < chunks; ++k) {
    const std::int64_t i0 = k * kChunk;
    const std::int64_t i1 = std::min(N, i0 + kChunk);
    double s = 0.0;
    for (std::int64_t i = i0; i < i1; ++i) s += static_cast<double>(x[i]) * x[i];
    partial[static_cast<std::size_t>(k)] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace trainer::cpu
