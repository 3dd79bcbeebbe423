// bf16 softmax cross-entropy kernels, one block per row. Fast path (V a multiple of 8 up to
// 65536): the row held in registers, one read and one write of it. General path: an online
// max/sum pass (each thread keeps a running max and a sum rescaled to it, merged in a fixed
// tree), then one pass writing the gradient in place: two reads of the row, one write. Both
// deterministic.
#include "kernels/bf16_common.cuh"
#include "kernels/common.cuh"
#include "kernels/crossentropy_bf16.cuh"
#include "kernels/errors.hpp"

#include <cstdint>

namespace trainer::gpu {
namespace {

constexpr int kCeThreads = 512;

__device__ inline void merge(float& m, float& s, float m2, float s2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;
  s = s * __expf(m - mx) + s2 * __expf(m2 - mx);
  m = mx;
}

__global__ void crossentropy_kernel(float* losses, bf16* dlogits, const bf16* logits, const std::int32_t* targets,
                                    float dloss, int V, unsigned* error_word) {
  __shared__ float shared_m[32];
  __shared__ float shared_s[32];
  const std::int64_t n = blockIdx.x;
  const bf16* x = logits + n * V;
  bf16* d = dlogits ? dlogits + n * V : nullptr;
  const int target = targets[n];
  if (target < 0 || target >= V) {
    const float fill = target < 0 ? 0.0f : NAN;
    if (threadIdx.x == 0) {
      losses[n] = fill;
      if (target >= V) atomicOr(error_word, static_cast<unsigned>(kBadTarget));
    }
    if (d) {
      for (int i = threadIdx.x; i < V; i += blockDim.x) d[i] = __float2bfloat16_rn(fill);
    }
    return;
  }
  // Read before any thread writes dlogits (which may alias logits); the barriers of the
  // reduction order this read before the writes below.
  const float x_target = load_f(x[target]);
  float m = -INFINITY, s = 0.0f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = load_f(x[i]);
    if (v > m) {
      s = s * __expf(m - v) + 1.0f;
      m = v;
    } else {
      s += __expf(v - m);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
    merge(m, s, m2, s2);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  if (lane == 0) {
    shared_m[warp] = m;
    shared_s[warp] = s;
  }
  __syncthreads();
  m = lane < warps ? shared_m[lane] : -INFINITY;
  s = lane < warps ? shared_s[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
    merge(m, s, m2, s2);
  }
  if (threadIdx.x == 0) losses[n] = logf(s) - (x_target - m);
  if (d) {
    const float inv = 1.0f / s;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
      const float g = __expf(load_f(x[i]) - m) * inv * dloss;
      d[i] = __float2bfloat16_rn(i == target ? g - dloss : g);
    }
  }
}

// Fast path (V a multiple of 8, at most 8 * 8 * 1024, 16-byte aligned rows): the block keeps
// its whole row in registers (kVecs 8-value vectors per thread, packed bf16), so the logits
// are read from memory once and the gradient written once. Max, then sum of exponentials,
// each a fixed block tree: deterministic. Every read of the row happens before the barriers
// of the reductions, every write after them, so dlogits may alias logits.
constexpr int kCeFastThreads = 1024;
constexpr int kCeMaxVecs = 8;

template <int kVecs>
__global__ void __launch_bounds__(kCeFastThreads, 1)
    crossentropy_rows_in_registers_kernel(float* losses, bf16* dlogits, const bf16* logits,
                                          const std::int32_t* targets, float dloss, int V, unsigned* error_word) {
  __shared__ float shared[32];
  const std::int64_t n = blockIdx.x;
  const bf16* x = logits + n * V;
  bf16* d = dlogits ? dlogits + n * V : nullptr;
  const int target = targets[n];
  if (target < 0 || target >= V) {
    const float fill = target < 0 ? 0.0f : NAN;
    if (threadIdx.x == 0) {
      losses[n] = fill;
      if (target >= V) atomicOr(error_word, static_cast<unsigned>(kBadTarget));
    }
    if (d) {
      for (int i = threadIdx.x; i < V; i += blockDim.x) d[i] = __float2bfloat16_rn(fill);
    }
    return;
  }
  const float x_target = load_f(x[target]);
  uint4 v[kVecs];
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = (k * kCeFastThreads + static_cast<int>(threadIdx.x)) * 8;
    if (i < V) v[k] = *reinterpret_cast<const uint4*>(x + i);
  }
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = (k * kCeFastThreads + static_cast<int>(threadIdx.x)) * 8;
    if (i < V) {
      const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v[k]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 p = __bfloat1622float2(h[j]);
        m = fmaxf(m, fmaxf(p.x, p.y));
      }
    }
  }
  m = block_max(m, shared);
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = (k * kCeFastThreads + static_cast<int>(threadIdx.x)) * 8;
    if (i < V) {
      const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v[k]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 p = __bfloat1622float2(h[j]);
        s += __expf(p.x - m) + __expf(p.y - m);
      }
    }
  }
  s = block_sum(s, shared);
  if (threadIdx.x == 0) losses[n] = logf(s) - (x_target - m);
  if (!d) return;
  const float scale = dloss / s;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = (k * kCeFastThreads + static_cast<int>(threadIdx.x)) * 8;
    if (i < V) {
      const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v[k]);
      uint4 out;
      __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(&out);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 p = __bfloat1622float2(h[j]);
        float g0 = __expf(p.x - m) * scale, g1 = __expf(p.y - m) * scale;
        if (i + 2 * j == target) g0 -= dloss;
        if (i + 2 * j + 1 == target) g1 -= dloss;
        o[j] = __floats2bfloat162_rn(g0, g1);
      }
      *reinterpret_cast<uint4*>(d + i) = out;
    }
  }
}

template <int kVecs>
cudaError_t launch_rows_in_registers(float* losses, bf16* dlogits, const bf16* logits, const std::int32_t* targets,
                                     float dloss, int N, int V, unsigned* error_word, cudaStream_t s) {
  crossentropy_rows_in_registers_kernel<kVecs><<<static_cast<unsigned>(N), kCeFastThreads, 0, s>>>(
      losses, dlogits, logits, targets, dloss, V, error_word);
  return cudaGetLastError();
}

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

}  // namespace

cudaError_t crossentropy_forward_backward_bf16(float* losses, bf16* dlogits, const bf16* logits,
                                               const std::int32_t* targets, float dloss, int N, int V,
                                               unsigned* error_word, cudaStream_t s) {
  const int vecs = (V / 8 + kCeFastThreads - 1) / kCeFastThreads;
  if (V % 8 == 0 && vecs <= kCeMaxVecs && aligned16(logits) && (!dlogits || aligned16(dlogits))) {
    switch (vecs) {
      case 1: return launch_rows_in_registers<1>(losses, dlogits, logits, targets, dloss, N, V, error_word, s);
      case 2: return launch_rows_in_registers<2>(losses, dlogits, logits, targets, dloss, N, V, error_word, s);
      case 3: return launch_rows_in_registers<3>(losses, dlogits, logits, targets, dloss, N, V, error_word, s);
      case 4: return launch_rows_in_registers<4>(losses, dlogits, logits, targets, dloss, N, V, error_word, s);
      case 5: return launch_rows_in_registers<5>(losses, dlogits, logits, targets, dloss, N, V, error_word, s);
      case 6: return launch_rows_in_registers<6>(losses, dlogits, logits, targets, dloss, N, V, error_word, s);
      case 7: return launch_rows_in_registers<7>(losses, dlogits, logits, targets, dloss, N, V, error_word, s);
      default: return launch_rows_in_registers<8>(losses, dlogits, logits, targets, dloss, N, V, error_word, s);
    }
  }
  crossentropy_kernel<<<static_cast<unsigned>(N), kCeThreads, 0, s>>>(losses, dlogits, logits, targets, dloss, V,
                                                                      error_word);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
