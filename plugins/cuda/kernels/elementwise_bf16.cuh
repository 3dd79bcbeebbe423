// bf16 elementwise launchers: residual_forward_bf16, dropout_apply_bf16, gelu_forward_bf16,
// gelu_backward_bf16, embedding_forward_bf16, add_bias_rows_bf16. bf16 storage, f32 arithmetic; the same
// formulas (and, for dropout, the same counter-RNG mask) as the f32 kernels.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "trainer/rng.hpp"

namespace trainer::gpu {

cudaError_t residual_forward_bf16(__nv_bfloat16* out, const __nv_bfloat16* a, const __nv_bfloat16* b,
                                  std::int64_t n, cudaStream_t s);
cudaError_t dropout_apply_bf16(__nv_bfloat16* out, const __nv_bfloat16* inp, float p, float scale, RngKey key,
                               std::int64_t n, cudaStream_t s);
cudaError_t gelu_forward_bf16(__nv_bfloat16* out, const __nv_bfloat16* inp, std::int64_t n, cudaStream_t s);
cudaError_t gelu_backward_bf16(__nv_bfloat16* dinp, const __nv_bfloat16* inp, const __nv_bfloat16* dout,
                               std::int64_t n, cudaStream_t s);
// out[r,:] = wte[tokens[r],:] + wpe[r % T,:] (added in f32, rounded once). A token outside
// [0, vocab) gives a NaN row and sets kBadTokenForward in *error_word.
cudaError_t embedding_forward_bf16(__nv_bfloat16* out, const std::int32_t* tokens, const __nv_bfloat16* wte,
                                   const __nv_bfloat16* wpe, int B, int T, int C, std::int64_t vocab,
                                   unsigned* error_word, cudaStream_t s);

// out[r, j] += bias[j] for r < rows, j < cols (f32 add, one rounding).
cudaError_t add_bias_rows_bf16(__nv_bfloat16* out, const __nv_bfloat16* bias, std::int64_t rows, int cols,
                               cudaStream_t s);

}  // namespace trainer::gpu
