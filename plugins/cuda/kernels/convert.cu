// dtype conversion kernels: f32 -> bf16 (round to nearest even) and bf16 -> f32.
#include "kernels/bf16_common.cuh"
#include "kernels/common.cuh"
#include "kernels/convert.cuh"

namespace trainer::gpu {
namespace {

__global__ void to_bf16_kernel(bf16* dst, const float* src, std::int64_t n) {
  TRAINER_GRID_STRIDE(i, n) dst[i] = __float2bfloat16_rn(src[i]);
}

__global__ void to_f32_kernel(float* dst, const bf16* src, std::int64_t n) {
  TRAINER_GRID_STRIDE(i, n) dst[i] = __bfloat162float(src[i]);
}

}  // namespace

cudaError_t convert_f32_to_bf16(bf16* dst, const float* src, std::int64_t n, cudaStream_t s) {
  to_bf16_kernel<<<grid_for(n), kThreads, 0, s>>>(dst, src, n);
  return cudaGetLastError();
}

cudaError_t convert_bf16_to_f32(float* dst, const bf16* src, std::int64_t n, cudaStream_t s) {
  to_f32_kernel<<<grid_for(n), kThreads, 0, s>>>(dst, src, n);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
