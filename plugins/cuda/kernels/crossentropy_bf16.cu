// bf16 softmax cross-entropy kernel: one block per row; an online max/sum pass (each thread
// keeps a running max and a sum rescaled to it, merged in a fixed tree, so the result is
// deterministic), then one pass writing the gradient in place. Two reads of the row, one
// write, all in bf16.
#include "kernels/bf16_common.cuh"
#include "kernels/common.cuh"
#include "kernels/crossentropy_bf16.cuh"
#include "kernels/errors.hpp"

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

}  // namespace

cudaError_t crossentropy_forward_backward_bf16(float* losses, bf16* dlogits, const bf16* logits,
                                               const std::int32_t* targets, float dloss, int N, int V,
                                               unsigned* error_word, cudaStream_t s) {
  crossentropy_kernel<<<static_cast<unsigned>(N), kCeThreads, 0, s>>>(losses, dlogits, logits, targets, dloss, V,
                                                                      error_word);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
