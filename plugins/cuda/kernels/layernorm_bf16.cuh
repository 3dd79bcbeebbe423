// bf16 layer normalisation and column-sum launchers: layernorm_forward_bf16,
// layernorm_backward_bf16, column_sums_bf16. bf16 activations and parameters (the
// compute copies), f32 statistics, f32 parameter gradients.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

cudaError_t layernorm_forward_bf16(__nv_bfloat16* out, float* mean, float* rstd, const __nv_bfloat16* inp,
                                   const __nv_bfloat16* weight, const __nv_bfloat16* bias, std::int64_t N, int C,
                                   cudaStream_t s);
// Column sums for the parameter gradients go over chunks of kBf16ColumnChunk rows (short
// loops, many threads), then one warp per column adds a column's chunks in a fixed tree: the
// same bits every run, and no block-starved final pass when there are few columns.
constexpr std::int64_t kBf16ColumnChunk = 32;
inline std::int64_t bf16_column_chunks(std::int64_t rows) { return (rows + kBf16ColumnChunk - 1) / kBf16ColumnChunk; }

// Accumulates into dinp (bf16, added in f32 and rounded once), dweight and dbias (f32).
// scratch: 2 * bf16_column_chunks(N) * C floats.
cudaError_t layernorm_backward_bf16(__nv_bfloat16* dinp, float* dweight, float* dbias, const __nv_bfloat16* dout,
                                    const __nv_bfloat16* inp, const __nv_bfloat16* weight, const float* mean,
                                    const float* rstd, std::int64_t N, int C, float* scratch, cudaStream_t s);
// dst[c] += sum over the rows of a bf16 src[rows, cols] (f32 sums, fixed order).
// partials: bf16_column_chunks(rows) * cols floats of scratch.
cudaError_t column_sums_bf16(float* dst, float* partials, const __nv_bfloat16* src, std::int64_t rows, int cols,
                             cudaStream_t s);

}  // namespace trainer::gpu
