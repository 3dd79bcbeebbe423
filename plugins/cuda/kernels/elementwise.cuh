// Elementwise launchers: residual_forward, dropout_apply, axpby, gelu_forward, gelu_backward,
// adamw_update, add_bias_rows. Raw device pointers, explicit sizes, one stream; each returns
// the launch status.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "trainer/rng.hpp"

namespace trainer::gpu {

cudaError_t residual_forward(float* out, const float* a, const float* b, std::int64_t n, cudaStream_t s);
// out[i] = keep(i) ? inp[i] * scale : 0 with keep(i) = rng_uniform(key, i) >= p; p > 0.
cudaError_t dropout_apply(float* out, const float* inp, float p, float scale, RngKey key, std::int64_t n,
                          cudaStream_t s);
// y = a x + b y; y is not read when b == 0.
cudaError_t axpby(float* y, float a, const float* x, float b, std::int64_t n, cudaStream_t s);
cudaError_t gelu_forward(float* out, const float* inp, std::int64_t n, cudaStream_t s);
cudaError_t gelu_backward(float* dinp, const float* inp, const float* dout, std::int64_t n, cudaStream_t s);
// c1 = 1 - beta1^t, c2 = 1 - beta2^t (formed in double by the caller).
// A slice of at most kAdamWChunk elements of one tensor of a multi-tensor AdamW update.
struct AdamWChunk {
  float* param;
  const float* grad;
  float* m;
  float* v;
  std::int64_t n;
  float weight_decay;
  void* compute;  // null, or n bf16 that receive the updated param (round to nearest even)
};
constexpr std::int64_t kAdamWChunk = 32768;
// Every chunk of the device array `chunks` in one launch (one block each).
cudaError_t adamw_update_chunks(const AdamWChunk* chunks, int count, float lr, float beta1, float beta2, float eps,
                                float c1, float c2, cudaStream_t s);
cudaError_t adamw_update(float* param, const float* grad, float* m, float* v, std::int64_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, float c1, float c2,
                         cudaStream_t s);
// out[r, j] += bias[j] for r < rows, j < cols.
cudaError_t add_bias_rows(float* out, const float* bias, std::int64_t rows, int cols, cudaStream_t s);

}  // namespace trainer::gpu
