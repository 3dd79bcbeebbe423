// Vocabulary-parallel cross-entropy (tensor parallel): each rank reduces its shard of the
// vocabulary to three numbers per row, the group gathers them, and each rank finishes its
// own shard's gradient from the combined maximum and sum. One block per row; every reduction
// is a fixed tree, so the results are the same bits on every run.
#include "kernels/bf16_common.cuh"
#include "kernels/common.cuh"
#include "kernels/crossentropy_shard.cuh"

#include <cstdint>

namespace trainer::gpu {
namespace {

constexpr int kRowThreads = 512;

__device__ inline void merge(float& m, float& s, float m2, float s2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;
  s = s * __expf(m - mx) + s2 * __expf(m2 - mx);
  m = mx;
}

// The block's running (max, sum) pairs merged in a fixed tree; every thread gets the result.
__device__ inline void block_merge(float& m, float& s, float* shared_m, float* shared_s) {
  for (int o = 16; o > 0; o >>= 1) merge(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  __syncthreads();
  if (lane == 0) {
    shared_m[warp] = m;
    shared_s[warp] = s;
  }
  __syncthreads();
  m = lane < warps ? shared_m[lane] : -INFINITY;
  s = lane < warps ? shared_s[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) merge(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
}

template <class T>
__global__ void shard_stats_kernel(float* stats, const T* logits, const std::int32_t* targets, int first, int V) {
  __shared__ float shared_m[32];
  __shared__ float shared_s[32];
  const std::int64_t n = blockIdx.x;
  const T* x = logits + n * V;
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
  block_merge(m, s, shared_m, shared_s);
  if (threadIdx.x == 0) {
    const int t = targets[n] - first;
    stats[3 * n] = m;
    stats[3 * n + 1] = s;
    stats[3 * n + 2] = (targets[n] >= 0 && t >= 0 && t < V) ? load_f(x[t]) : 0.0f;
  }
}

template <class T>
__global__ void shard_finish_kernel(float* losses, T* dlogits, const T* logits, const std::int32_t* targets,
                                    const float* all_stats, int shards, int N, int first, float dloss, int V) {
  const std::int64_t n = blockIdx.x;
  const int target = targets[n];
  T* d = dlogits ? dlogits + n * V : nullptr;
  if (target < 0) {
    if (threadIdx.x == 0) losses[n] = 0.0f;
    if (d) {
      for (int i = threadIdx.x; i < V; i += blockDim.x) d[i] = store_f<T>(0.0f);
    }
    return;
  }
  // Every thread combines the shards in the same order (shard 0 first): the same M and S
  // on every rank of the group, whichever shard it holds.
  float M = -INFINITY, S = 0.0f, zt = 0.0f;
  for (int r = 0; r < shards; ++r) {
    const float* st = all_stats + (static_cast<std::int64_t>(r) * N + n) * 3;
    merge(M, S, st[0], st[1]);
    zt += st[2];
  }
  if (threadIdx.x == 0) losses[n] = logf(S) + M - zt;
  if (!d) return;
  const T* x = logits + n * V;
  const float scale = dloss / S;
  const int t = target - first;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float g = __expf(load_f(x[i]) - M) * scale;
    d[i] = store_f<T>(i == t ? g - dloss : g);
  }
}

}  // namespace

cudaError_t crossentropy_shard_stats(float* stats, const void* logits, bool bf16, const std::int32_t* targets,
                                     int first, int N, int V, cudaStream_t s) {
  if (N == 0) return cudaSuccess;
  if (bf16) {
    shard_stats_kernel<__nv_bfloat16><<<N, kRowThreads, 0, s>>>(stats, static_cast<const __nv_bfloat16*>(logits),
                                                                 targets, first, V);
  } else {
    shard_stats_kernel<float><<<N, kRowThreads, 0, s>>>(stats, static_cast<const float*>(logits), targets, first, V);
  }
  return cudaGetLastError();
}

cudaError_t crossentropy_shard_finish(float* losses, void* dlogits, const void* logits, bool bf16,
                                      const std::int32_t* targets, const float* all_stats, int shards, int first,
                                      float dloss, int N, int V, cudaStream_t s) {
  if (N == 0) return cudaSuccess;
  if (bf16) {
    shard_finish_kernel<__nv_bfloat16><<<N, kRowThreads, 0, s>>>(
        losses, static_cast<__nv_bfloat16*>(dlogits), static_cast<const __nv_bfloat16*>(logits), targets, all_stats,
        shards, N, first, dloss, V);
  } else {
    shard_finish_kernel<float><<<N, kRowThreads, 0, s>>>(losses, static_cast<float*>(dlogits),
                                                         static_cast<const float*>(logits), targets, all_stats, shards,
                                                         N, first, dloss, V);
  }
  return cudaGetLastError();
}

}  // namespace trainer::gpu
