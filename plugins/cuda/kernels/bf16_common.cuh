// Device helpers for the bf16 kernels (never included by host C++): load_f (any storage
// type to float), store_f (float to the storage type, round to nearest even).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace trainer::gpu {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float load_f(float x) { return x; }
__device__ __forceinline__ float load_f(bf16 x) { return __bfloat162float(x); }

template <class T> __device__ __forceinline__ T store_f(float x);
template <> __device__ __forceinline__ float store_f<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 store_f<bf16>(float x) { return __float2bfloat16_rn(x); }

#define TRAINER_GRID_STRIDE(i, n) \
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

}  // namespace trainer::gpu
