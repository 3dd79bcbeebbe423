// Causal softmax kernels for attention: forward and backward, one warp per row of T scores.
#include "kernels/attention.cuh"
#include "kernels/common.cuh"

namespace trainer::gpu {
namespace {

constexpr int kRowsPerBlock = kThreads / 32;

__global__ void softmax_forward_kernel(float* att, std::int64_t rows, int T) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = static_cast<int>(row % T);
  float* p = att + row * T;
  float mx = -INFINITY;
  for (int j = lane; j <= t; j += 32) mx = fmaxf(mx, p[j]);
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int j = lane; j <= t; j += 32) sum += expf(p[j] - mx);
  sum = warp_sum(sum);
  const float inv = 1.0f / sum;
  for (int j = lane; j < T; j += 32) p[j] = j <= t ? expf(p[j] - mx) * inv : 0.0f;
}

__global__ void softmax_backward_kernel(float* datt, const float* att, std::int64_t rows, int T) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = static_cast<int>(row % T);
  const float* p = att + row * T;
  float* d = datt + row * T;
  float dot = 0.0f;
  for (int j = lane; j <= t; j += 32) dot += p[j] * d[j];
  dot = warp_sum(dot);
  for (int j = lane; j < T; j += 32) d[j] = j <= t ? p[j] * (d[j] - dot) : 0.0f;
}

unsigned row_blocks(std::int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

cudaError_t softmax_causal_forward(float* att, std::int64_t rows, int T, cudaStream_t s) {
  softmax_forward_kernel<<<row_blocks(rows), kThreads, 0, s>>>(att, rows, T);
  return cudaGetLastError();
}

cudaError_t softmax_causal_backward(float* datt, const float* att, std::int64_t rows, int T, cudaStream_t s) {
  softmax_backward_kernel<<<row_blocks(rows), kThreads, 0, s>>>(datt, att, rows, T);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
