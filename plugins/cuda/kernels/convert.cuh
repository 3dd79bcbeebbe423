// dtype conversion launchers: convert_f32_to_bf16, convert_bf16_to_f32.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

// Round to nearest even; NaN stays NaN.
cudaError_t convert_f32_to_bf16(__nv_bfloat16* dst, const float* src, std::int64_t n, cudaStream_t s);
cudaError_t convert_bf16_to_f32(float* dst, const __nv_bfloat16* src, std::int64_t n, cudaStream_t s);

}  // namespace trainer::gpu
