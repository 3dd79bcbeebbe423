// Layer normalisation launchers: layernorm_forward, layernorm_backward.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

constexpr float kLayerNormEps = 1e-5f;  // as the CPU backend

cudaError_t layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                              const float* bias, std::int64_t N, int C, cudaStream_t s);
// Accumulates into dinp, dweight, dbias. scratch: 2 * column_chunks(N) * C floats.
cudaError_t layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, const float* mean,
                               const float* rstd, std::int64_t N, int C, float* scratch, cudaStream_t s);

}  // namespace trainer::gpu
