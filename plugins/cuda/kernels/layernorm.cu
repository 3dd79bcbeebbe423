// Layer normalisation kernels: forward (one warp per row, two-pass variance as the CPU),
// backward (one warp per row for dinp; dweight/dbias through fixed row chunks).
#include "kernels/common.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/reduce.cuh"

namespace trainer::gpu {
namespace {

constexpr int kRowsPerBlock = kThreads / 32;

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* inp,
                                         const float* weight, const float* bias, std::int64_t N, int C) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = inp + row * C;
  float sum = 0.0f;
  for (int c = lane; c < C; c += 32) sum += x[c];
  const float m = warp_sum(sum) / static_cast<float>(C);
  float var = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float d = x[c] - m;
    var += d * d;
  }
  var = warp_sum(var) / static_cast<float>(C);
  const float s = 1.0f / sqrtf(var + kLayerNormEps);
  float* o = out + row * C;
  for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * s * weight[c] + bias[c];
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

__global__ void layernorm_dinp_kernel(float* dinp, const float* dout, const float* inp, const float* weight,
                                      const float* mean, const float* rstd, std::int64_t N, int C) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = inp + row * C;
  const float* g = dout + row * C;
  const float m = mean[row];
  const float s = rstd[row];
  float sum_dn = 0.0f, sum_dn_xhat = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float dn = g[c] * weight[c];
    sum_dn += dn;
    sum_dn_xhat += dn * (x[c] - m) * s;
  }
  sum_dn = warp_sum(sum_dn) / static_cast<float>(C);
  sum_dn_xhat = warp_sum(sum_dn_xhat) / static_cast<float>(C);
  float* di = dinp + row * C;
  for (int c = lane; c < C; c += 32) {
    const float xhat = (x[c] - m) * s;
    di[c] += (g[c] * weight[c] - sum_dn - xhat * sum_dn_xhat) * s;
  }
}

// grid (ceil(C / threads), chunks): per column, g * xhat and g summed over the chunk's rows.
__global__ void layernorm_param_partials_kernel(float* pw, float* pb, const float* dout, const float* inp,
                                                const float* mean, const float* rstd, std::int64_t N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const std::int64_t r0 = blockIdx.y * kColumnChunk;
  const std::int64_t r1 = r0 + kColumnChunk < N ? r0 + kColumnChunk : N;
  float aw = 0.0f, ab = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r) {
    const float g = dout[r * C + c];
    aw += g * (inp[r * C + c] - mean[r]) * rstd[r];
    ab += g;
  }
  pw[blockIdx.y * static_cast<std::int64_t>(C) + c] = aw;
  pb[blockIdx.y * static_cast<std::int64_t>(C) + c] = ab;
}

unsigned row_blocks(std::int64_t N) { return static_cast<unsigned>((N + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

cudaError_t layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                              const float* bias, std::int64_t N, int C, cudaStream_t s) {
  layernorm_forward_kernel<<<row_blocks(N), kThreads, 0, s>>>(out, mean, rstd, inp, weight, bias, N, C);
  return cudaGetLastError();
}

cudaError_t layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, const float* mean,
                               const float* rstd, std::int64_t N, int C, float* scratch, cudaStream_t s) {
  layernorm_dinp_kernel<<<row_blocks(N), kThreads, 0, s>>>(dinp, dout, inp, weight, mean, rstd, N, C);
  const std::int64_t chunks = column_chunks(N);
  float* pw = scratch;
  float* pb = scratch + chunks * C;
  const dim3 grid((C + kThreads - 1) / kThreads, static_cast<unsigned>(chunks));
  layernorm_param_partials_kernel<<<grid, kThreads, 0, s>>>(pw, pb, dout, inp, mean, rstd, N, C);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  e = column_finalize(dweight, pw, chunks, C, s);
  if (e != cudaSuccess) return e;
  return column_finalize(dbias, pb, chunks, C, s);
}

}  // namespace trainer::gpu
