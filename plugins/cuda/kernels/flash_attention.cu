// Fused causal attention (FlashAttention-2 style), f32 and bf16: defines flash_attention_refusal,
// flash_attention_forward, flash_attention_backward and the row-delta kernel; the kernels
// themselves are in flash_attention_bf16.cuh (tensor cores) and flash_attention_f32.cuh.
//
// Forward: each block takes a tile of queries and walks the key tiles up to the diagonal with
// an online softmax, so no score matrix exists beyond one tile in registers; it writes the
// output and each row's log-sum-exp. Backward: delta = rowsum(dO * O) per row, then two
// kernels that each remake P = exp(S - lse) tile by tile: one per key tile for dK and dV
// (looping over queries), one per query tile for dQ (looping over keys). Every gradient row
// has one owner block, so there are no atomics and every run gives the same bits.
#include <cuda_bf16.h>

#include <cmath>

#include "kernels/common.cuh"
#include "kernels/flash_attention.cuh"
#include "kernels/flash_attention_bf16.cuh"
#include "kernels/flash_attention_f32.cuh"

namespace trainer::gpu {
namespace {

using flash::bf16;

__device__ inline float to_f32(float x) { return x; }
__device__ inline float to_f32(bf16 x) { return __bfloat162float(x); }

// delta[b,h,t] = sum_d dout[b,t,h,d] * out[b,t,h,d]; one warp per (b, t, h), fixed order.
template <class E>
__global__ void row_delta_kernel(float* delta, const E* dout, const E* out, int B, int T, int C, int NH, int hs) {
  const std::int64_t w = blockIdx.x * static_cast<std::int64_t>(kThreads / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (w >= static_cast<std::int64_t>(B) * T * NH) return;
  const int h = static_cast<int>(w % NH);
  const std::int64_t bt = w / NH;
  const std::int64_t base = bt * C + static_cast<std::int64_t>(h) * hs;
  float acc = 0.0f;
  for (int d = lane; d < hs; d += 32) acc = fmaf(to_f32(dout[base + d]), to_f32(out[base + d]), acc);
  acc = warp_sum(acc);
  if (lane == 0) {
    const std::int64_t b = bt / T, t = bt % T;
    delta[(b * NH + h) * T + t] = acc;
  }
}

// The padded head size the kernels are instantiated for, or 0 when unsupported.
int padded_head(int hs, bool bf16) {
  if (hs <= 0 || hs > 128) return 0;
  if (bf16) {
    if (hs % 8 != 0) return 0;
    return hs <= 32 ? 32 : hs <= 64 ? 64 : 128;
  }
  return hs <= 16 ? 16 : hs <= 32 ? 32 : hs <= 64 ? 64 : 128;
}

float scale_of(int hs) { return 1.0f / std::sqrt(static_cast<float>(hs)); }
constexpr float kLog2e = 1.4426950408889634f;
// Warps per bf16 block. (8 warps of 16 rows measured no faster forward and 11% slower backward
// than 4 on an H200 at GPT-2's shape.)
constexpr int kWarps = 4;
// Row tiles per warp (M: 16*M rows) and the backward's walk step (N rows of the other side at a
// time), by padded head size. M = 2 halves the shared-memory reads per product; at D = 128 its
// accumulators would not fit the registers. The backward walks 32 rows at a time at M = 2 so
// that P and dS fit beside the dK/dV (or dQ) accumulators.
// The TRAINER_FLASH_* macros exist to measure other shapes with the attention benchmark
// (plugins/cuda/bench); the build never sets them.
#ifndef TRAINER_FLASH_FWD_M
#define TRAINER_FLASH_FWD_M 2
#endif
#ifndef TRAINER_FLASH_BWD_M
#define TRAINER_FLASH_BWD_M 2
#endif
#ifndef TRAINER_FLASH_BWD_N
#define TRAINER_FLASH_BWD_N 32
#endif
template <int D>
struct BlockShape {
  static constexpr int kForwardM = D <= 64 ? TRAINER_FLASH_FWD_M : 1;
  static constexpr int kM = D <= 64 ? TRAINER_FLASH_BWD_M : 1;
  static constexpr int kN = D <= 64 ? TRAINER_FLASH_BWD_N : 64;
};

template <class Kernel>
cudaError_t allow_smem(Kernel kernel, int bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

template <int D>
cudaError_t forward_bf16(bf16* out, float* lse, const bf16* qkv, int B, int T, int C, int NH, cudaStream_t s) {
  constexpr int W = kWarps, M = BlockShape<D>::kForwardM, kRows = 16 * M * W;
  const int hs = C / NH;
  const int smem = flash::forward_smem<D, W, M>();
  if (cudaError_t e = allow_smem(flash::flash_forward_bf16<D, W, M>, smem); e != cudaSuccess) return e;
  const dim3 grid((T + kRows - 1) / kRows, B * NH);
  flash::flash_forward_bf16<D, W, M><<<grid, 32 * W, smem, s>>>(out, lse, qkv, T, C, NH, hs, scale_of(hs) * kLog2e);
  return cudaGetLastError();
}

template <int D>
cudaError_t backward_bf16(bf16* dqkv, const float* delta, const bf16* dout, const bf16* qkv, const float* lse, int B,
                          int T, int C, int NH, cudaStream_t s) {
  constexpr int W = kWarps, M = BlockShape<D>::kM, N = BlockShape<D>::kN, kRows = 16 * M * W;
  const int hs = C / NH;
  const int smem = flash::backward_smem<D, W, M>();
  if (cudaError_t e = allow_smem(flash::flash_backward_dkdv_bf16<D, W, M, N>, smem); e != cudaSuccess) return e;
  if (cudaError_t e = allow_smem(flash::flash_backward_dq_bf16<D, W, M, N>, smem); e != cudaSuccess) return e;
  const dim3 grid((T + kRows - 1) / kRows, B * NH);
  const float scale = scale_of(hs);
  flash::flash_backward_dkdv_bf16<D, W, M, N><<<grid, 32 * W, smem, s>>>(dqkv, dout, qkv, lse, delta, T, C, NH, hs,
                                                                         scale * kLog2e, scale);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  flash::flash_backward_dq_bf16<D, W, M, N><<<grid, 32 * W, smem, s>>>(dqkv, dout, qkv, lse, delta, T, C, NH, hs,
                                                                       scale * kLog2e, scale);
  return cudaGetLastError();
}

template <int D>
cudaError_t forward_f32(float* out, float* lse, const float* qkv, int B, int T, int C, int NH, cudaStream_t s) {
  const int hs = C / NH;
  const dim3 grid((T + flash::F32<D>::kRows - 1) / flash::F32<D>::kRows, B * NH);
  flash::flash_forward_f32<D><<<grid, flash::kF32Threads, 0, s>>>(out, lse, qkv, T, C, NH, hs, scale_of(hs) * kLog2e);
  return cudaGetLastError();
}

template <int D>
cudaError_t backward_f32(float* dqkv, const float* delta, const float* dout, const float* qkv, const float* lse, int B,
                         int T, int C, int NH, cudaStream_t s) {
  const int hs = C / NH;
  const dim3 grid((T + flash::F32<D>::kRows - 1) / flash::F32<D>::kRows, B * NH);
  const float scale = scale_of(hs);
  flash::flash_backward_dkdv_f32<D><<<grid, flash::kF32Threads, 0, s>>>(dqkv, dout, qkv, lse, delta, T, C, NH, hs,
                                                                        scale * kLog2e, scale);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  flash::flash_backward_dq_f32<D><<<grid, flash::kF32Threads, 0, s>>>(dqkv, dout, qkv, lse, delta, T, C, NH, hs,
                                                                      scale * kLog2e, scale);
  return cudaGetLastError();
}

}  // namespace

const char* flash_attention_refusal(int hs, bool bf16) {
  if (padded_head(hs, bf16) != 0) return nullptr;
  return bf16 ? "bf16 attention needs a head size (C/NH) that is a multiple of 8 and at most 128"
              : "attention needs a head size (C/NH) of at most 128";
}

cudaError_t flash_attention_forward(void* out, float* lse, const void* qkv, bool bf16, int B, int T, int C, int NH,
                                    cudaStream_t s) {
  const int hs = C / NH;
  if (bf16) {
    auto* o = static_cast<flash::bf16*>(out);
    const auto* x = static_cast<const flash::bf16*>(qkv);
    switch (padded_head(hs, true)) {
      case 32: return forward_bf16<32>(o, lse, x, B, T, C, NH, s);
      case 64: return forward_bf16<64>(o, lse, x, B, T, C, NH, s);
      case 128: return forward_bf16<128>(o, lse, x, B, T, C, NH, s);
      default: return cudaErrorInvalidValue;
    }
  }
  auto* o = static_cast<float*>(out);
  const auto* x = static_cast<const float*>(qkv);
  switch (padded_head(hs, false)) {
    case 16: return forward_f32<16>(o, lse, x, B, T, C, NH, s);
    case 32: return forward_f32<32>(o, lse, x, B, T, C, NH, s);
    case 64: return forward_f32<64>(o, lse, x, B, T, C, NH, s);
    case 128: return forward_f32<128>(o, lse, x, B, T, C, NH, s);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t flash_attention_backward(void* dqkv, float* delta, const void* dout, const void* qkv, const void* out,
                                     const float* lse, bool bf16, int B, int T, int C, int NH, cudaStream_t s) {
  const int hs = C / NH;
  const std::int64_t warps = static_cast<std::int64_t>(B) * T * NH;
  const auto blocks = static_cast<unsigned>((warps + kThreads / 32 - 1) / (kThreads / 32));
  if (bf16) {
    auto* dx = static_cast<flash::bf16*>(dqkv);
    const auto* g = static_cast<const flash::bf16*>(dout);
    const auto* x = static_cast<const flash::bf16*>(qkv);
    row_delta_kernel<<<blocks, kThreads, 0, s>>>(delta, g, static_cast<const flash::bf16*>(out), B, T, C, NH, hs);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    switch (padded_head(hs, true)) {
      case 32: return backward_bf16<32>(dx, delta, g, x, lse, B, T, C, NH, s);
      case 64: return backward_bf16<64>(dx, delta, g, x, lse, B, T, C, NH, s);
      case 128: return backward_bf16<128>(dx, delta, g, x, lse, B, T, C, NH, s);
      default: return cudaErrorInvalidValue;
    }
  }
  auto* dx = static_cast<float*>(dqkv);
  const auto* g = static_cast<const float*>(dout);
  const auto* x = static_cast<const float*>(qkv);
  row_delta_kernel<<<blocks, kThreads, 0, s>>>(delta, g, static_cast<const float*>(out), B, T, C, NH, hs);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  switch (padded_head(hs, false)) {
    case 16: return backward_f32<16>(dx, delta, g, x, lse, B, T, C, NH, s);
    case 32: return backward_f32<32>(dx, delta, g, x, lse, B, T, C, NH, s);
    case 64: return backward_f32<64>(dx, delta, g, x, lse, B, T, C, NH, s);
    case 128: return backward_f32<128>(dx, delta, g, x, lse, B, T, C, NH, s);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace trainer::gpu
