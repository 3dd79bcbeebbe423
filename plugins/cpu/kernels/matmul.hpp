// Linear layer through cblas_sgemm: matmul_forward, matmul_backward.
#pragma once
#include <cblas.h>

#include <cstdint>

#include "kernels/common.hpp"

namespace trainer::cpu {

// out[N,OC] = inp[N,C] @ weight[OC,C]^T (+ bias[OC]); bias may be null.
inline void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                           int N, int C, int OC) {
  if (bias) {
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(N) * OC >= kParallelMin)
    for (int n = 0; n < N; ++n) {
      float* o = out + static_cast<std::int64_t>(n) * OC;
      for (int j = 0; j < OC; ++j) o[j] = bias[j];
    }
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C,
              bias ? 1.0f : 0.0f, out, OC);
}

// dinp = dout @ weight (overwritten; skipped when null); dweight += dout^T @ inp;
// dbias += column sums of dout (skipped when null).
inline void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                            const float* inp, const float* weight, int N, int C, int OC) {
  if (dinp) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
                0.0f, dinp, C);
  }
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
              dweight, C);
  if (dbias) column_sum_accumulate(dbias, dout, N, OC);
}

}  // namespace trainer::cpu
