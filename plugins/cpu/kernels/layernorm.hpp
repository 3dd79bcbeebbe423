// Layer normalisation over the last dim: layernorm_forward, layernorm_backward.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/common.hpp"

namespace trainer::cpu {

inline constexpr float kLayerNormEps = 1e-5f;

inline void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                              const float* weight, const float* bias, std::int64_t N, int C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (std::int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    // Two passes (mean, then centred variance) avoid the cancellation of E[x^2] - E[x]^2.
    float m = 0.0f;
    for (int c = 0; c < C; ++c) m += x[c];
    m /= static_cast<float>(C);
    float var = 0.0f;
    for (int c = 0; c < C; ++c) {
      const float d = x[c] - m;
      var += d * d;
    }
    var /= static_cast<float>(C);
    const float s = 1.0f / std::sqrt(var + kLayerNormEps);
    float* o = out + n * C;
    for (int c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

// Accumulates into dinp, dweight and dbias.
inline void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, const float* mean,
                               const float* rstd, std::int64_t N, int C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (std::int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    const float* g = dout + n * C;
    const float m = mean[n];
    const float s = rstd[n];
    float sum_dn = 0.0f;
    float sum_dn_xhat = 0.0f;
    for (int c = 0; c < C; ++c) {
      const float dn = g[c] * weight[c];
      sum_dn += dn;
      sum_dn_xhat += dn * (x[c] - m) * s;
    }
    sum_dn /= static_cast<float>(C);
    sum_dn_xhat /= static_cast<float>(C);
    float* di = dinp + n * C;
    for (int c = 0; c < C; ++c) {
      const float xhat = (x[c] - m) * s;
      di[c] += (g[c] * weight[c] - sum_dn - xhat * sum_dn_xhat) * s;
    }
  }
  // dweight/dbias reduce over rows: fixed column blocks, rows in order (see common.hpp).
  constexpr int kBlock = 64;
  const int blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin && blocks > 1)
  for (int blk = 0; blk < blocks; ++blk) {
    const int c0 = blk * kBlock;
    const int c1 = std::min(C, c0 + kBlock);
    float accw[kBlock] = {};
    float accb[kBlock] = {};
    for (std::int64_t n = 0; n < N; ++n) {
      const float* x = inp + n * C;
      const float* g = dout + n * C;
      const float m = mean[n];
      const float s = rstd[n];
      for (int c = c0; c < c1; ++c) {
        accw[c - c0] += g[c] * (x[c] - m) * s;
        accb[c - c0] += g[c];
      }
    }
    for (int c = c0; c < c1; ++c) {
      dweight[c] += accw[c - c0];
      dbias[c] += accb[c - c0];
    }
  }
}

}  // namespace trainer::cpu
