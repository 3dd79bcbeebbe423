// Softmax cross-entropy kernel: one block per row; the normaliser is summed in double, as
// the CPU does, with a fixed reduction tree.
#include "kernels/common.cuh"
#include "kernels/crossentropy.cuh"
#include "kernels/errors.hpp"

namespace trainer::gpu {
namespace {

constexpr int kCeThreads = 512;

__global__ void crossentropy_kernel(float* losses, float* dlogits, const float* logits,
                                    const std::int32_t* targets, float dloss, int V, unsigned* error_word) {
  __shared__ float shared_f[32];
  __shared__ double shared_d[32];
  const std::int64_t n = blockIdx.x;
  const float* x = logits + n * V;
  float* d = dlogits ? dlogits + n * V : nullptr;
  const int target = targets[n];
  if (target < 0 || target >= V) {
    const float fill = target < 0 ? 0.0f : NAN;
    if (threadIdx.x == 0) {
      losses[n] = fill;
      if (target >= V) atomicOr(error_word, static_cast<unsigned>(kBadTarget));
    }
    if (d) {
      for (int i = threadIdx.x; i < V; i += blockDim.x) d[i] = fill;
    }
    return;
  }
  // Read before any thread writes dlogits (which may alias logits); the reductions' barriers
  // order this read before the writes below.
  const float x_target = x[target];
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, x[i]);
  mx = block_max(mx, shared_f);
  double sum = 0.0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) sum += exp(static_cast<double>(x[i] - mx));
  sum = block_sum(sum, shared_d);
  if (threadIdx.x == 0) losses[n] = static_cast<float>(log(sum) - static_cast<double>(x_target - mx));
  if (d) {
    const float inv = static_cast<float>(1.0 / sum);
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
      const float g = expf(x[i] - mx) * inv * dloss;
      d[i] = i == target ? g - dloss : g;
    }
  }
}

}  // namespace

cudaError_t crossentropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                          const std::int32_t* targets, float dloss, int N, int V,
                                          unsigned* error_word, cudaStream_t s) {
  crossentropy_kernel<<<static_cast<unsigned>(N), kCeThreads, 0, s>>>(losses, dlogits, logits, targets, dloss,
                                                                      V, error_word);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
