// GELU, tanh approximation as in GPT-2: gelu_forward, gelu_backward.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.hpp"

namespace trainer::cpu {

inline constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi)
inline constexpr float kGeluCubic = 0.044715f;

// out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
inline void gelu_forward(float* out, const float* inp, std::int64_t N) {
#pragma omp parallel for schedule(static) if (N >= kParallelMin)
  for (std::int64_t i = 0; i < N; ++i) {
    const float x = inp[i];
    const float u = kGeluScale * (x + kGeluCubic * x * x * x);
    out[i] = 0.5f * x * (1.0f + std::tanh(u));
  }
}

// dinp = dout * gelu'(inp), overwritten.
inline void gelu_backward(float* dinp, const float* inp, const float* dout, std::int64_t N) {
#pragma omp parallel for schedule(static) if (N >= kParallelMin)
  for (std::int64_t i = 0; i < N; ++i) {
    const float x = inp[i];
    const float u = kGeluScale * (x + kGeluCubic * x * x * x);
    const float th = std::tanh(u);
    const float sech2 = 1.0f - th * th;
    const float du = kGeluScale * (1.0f + 3.0f * kGeluCubic * x * x);
    dinp[i] = dout[i] * (0.5f * (1.0f + th) + 0.5f * x * sech2 * du);
  }
}

}  // namespace trainer::cpu
