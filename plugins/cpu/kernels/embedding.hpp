// Token + position embedding: embedding_forward, embedding_backward.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/common.hpp"

namespace trainer::cpu {

// out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]; tokens must already be in range.
inline void embedding_forward(float* out, const std::int32_t* tokens, const float* wte,
                              const float* wpe, int B, int T, int C) {
  const std::int64_t rows = static_cast<std::int64_t>(B) * T;
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* e = wte + static_cast<std::int64_t>(tokens[r]) * C;
    const float* p = wpe + (r % T) * C;
    float* o = out + r * C;
    for (int c = 0; c < C; ++c) o[c] = e[c] + p[c];
  }
}

// dwte[tokens[b,t],:] += dout[b,t,:]; dwpe[t,:] += dout[b,t,:].
// Tokens repeat, so rows of dwte collide; splitting the channels instead of the rows gives
// each thread its own columns and keeps the order of additions fixed (rows in order).
inline void embedding_backward(float* dwte, float* dwpe, const float* dout,
                               const std::int32_t* tokens, int B, int T, int C) {
  constexpr int kBlock = 32;
  const int blocks = (C + kBlock - 1) / kBlock;
  const std::int64_t rows = static_cast<std::int64_t>(B) * T;
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin && blocks > 1)
  for (int blk = 0; blk < blocks; ++blk) {
    const int c0 = blk * kBlock;
    const int c1 = std::min(C, c0 + kBlock);
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* d = dout + r * C;
      float* e = dwte + static_cast<std::int64_t>(tokens[r]) * C;
      float* p = dwpe + (r % T) * C;
      for (int c = c0; c < c1; ++c) {
        e[c] += d[c];
        p[c] += d[c];
      }
    }
  }
}

}  // namespace trainer::cpu
