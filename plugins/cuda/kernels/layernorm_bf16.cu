// bf16 layer normalisation kernels: forward (one warp per row, two-pass variance in f32),
// backward (one warp per row for dinp; dweight/dbias through fixed row chunks and a warp per
// column, so the result is deterministic), and bf16 column sums (bias gradients).
#include "kernels/bf16_common.cuh"
#include "kernels/common.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/layernorm_bf16.cuh"

namespace trainer::gpu {
namespace {

constexpr int kRowsPerBlock = kThreads / 32;

__global__ void forward_kernel(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight,
                               const bf16* bias, std::int64_t N, int C) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const bf16* x = inp + row * C;
  float sum = 0.0f;
  for (int c = lane; c < C; c += 32) sum += load_f(x[c]);
  const float m = warp_sum(sum) / static_cast<float>(C);
  float var = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float d = load_f(x[c]) - m;
    var += d * d;
  }
  var = warp_sum(var) / static_cast<float>(C);
  const float s = 1.0f / sqrtf(var + kLayerNormEps);
  bf16* o = out + row * C;
  for (int c = lane; c < C; c += 32) {
    o[c] = __float2bfloat16_rn((load_f(x[c]) - m) * s * load_f(weight[c]) + load_f(bias[c]));
  }
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

__global__ void dinp_kernel(bf16* dinp, const bf16* dout, const bf16* inp, const bf16* weight, const float* mean,
                            const float* rstd, std::int64_t N, int C) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const bf16* x = inp + row * C;
  const bf16* g = dout + row * C;
  const float m = mean[row];
  const float s = rstd[row];
  float sum_dn = 0.0f, sum_dn_xhat = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float dn = load_f(g[c]) * load_f(weight[c]);
    sum_dn += dn;
    sum_dn_xhat += dn * (load_f(x[c]) - m) * s;
  }
  sum_dn = warp_sum(sum_dn) / static_cast<float>(C);
  sum_dn_xhat = warp_sum(sum_dn_xhat) / static_cast<float>(C);
  bf16* di = dinp + row * C;
  for (int c = lane; c < C; c += 32) {
    const float xhat = (load_f(x[c]) - m) * s;
    const float d = (load_f(g[c]) * load_f(weight[c]) - sum_dn - xhat * sum_dn_xhat) * s;
    di[c] = __float2bfloat16_rn(load_f(di[c]) + d);
  }
}

__global__ void param_partials_kernel(float* pw, float* pb, const bf16* dout, const bf16* inp, const float* mean,
                                      const float* rstd, std::int64_t N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const std::int64_t r0 = blockIdx.y * kBf16ColumnChunk;
  const std::int64_t r1 = r0 + kBf16ColumnChunk < N ? r0 + kBf16ColumnChunk : N;
  float aw = 0.0f, ab = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r) {
    const float g = load_f(dout[r * C + c]);
    aw += g * (load_f(inp[r * C + c]) - mean[r]) * rstd[r];
    ab += g;
  }
  pw[blockIdx.y * static_cast<std::int64_t>(C) + c] = aw;
  pb[blockIdx.y * static_cast<std::int64_t>(C) + c] = ab;
}

__global__ void column_partials_kernel(float* partials, const bf16* src, std::int64_t rows, int cols) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const std::int64_t r0 = blockIdx.y * kBf16ColumnChunk;
  const std::int64_t r1 = r0 + kBf16ColumnChunk < rows ? r0 + kBf16ColumnChunk : rows;
  float acc = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r) acc += load_f(src[r * cols + c]);
  partials[blockIdx.y * static_cast<std::int64_t>(cols) + c] = acc;
}

// One warp per column: lane l adds chunks l, l+32, ... in order, then a fixed shuffle tree.
__global__ void finalize_kernel(float* dst, const float* partials, std::int64_t chunks, int cols) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (c >= cols) return;
  float acc = 0.0f;
  for (std::int64_t k = lane; k < chunks; k += 32) acc += partials[k * cols + c];
  acc = warp_sum(acc);
  if (lane == 0) dst[c] += acc;
}

cudaError_t finalize(float* dst, const float* partials, std::int64_t chunks, int cols, cudaStream_t s) {
  finalize_kernel<<<static_cast<unsigned>((cols + kRowsPerBlock - 1) / kRowsPerBlock), kThreads, 0, s>>>(
      dst, partials, chunks, cols);
  return cudaGetLastError();
}

unsigned row_blocks(std::int64_t N) { return static_cast<unsigned>((N + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

cudaError_t layernorm_forward_bf16(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight,
                                   const bf16* bias, std::int64_t N, int C, cudaStream_t s) {
  forward_kernel<<<row_blocks(N), kThreads, 0, s>>>(out, mean, rstd, inp, weight, bias, N, C);
  return cudaGetLastError();
}

cudaError_t layernorm_backward_bf16(bf16* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp,
                                    const bf16* weight, const float* mean, const float* rstd, std::int64_t N, int C,
                                    float* scratch, cudaStream_t s) {
  dinp_kernel<<<row_blocks(N), kThreads, 0, s>>>(dinp, dout, inp, weight, mean, rstd, N, C);
  const std::int64_t chunks = bf16_column_chunks(N);
  float* pw = scratch;
  float* pb = scratch + chunks * C;
  const dim3 grid((C + kThreads - 1) / kThreads, static_cast<unsigned>(chunks));
  param_partials_kernel<<<grid, kThreads, 0, s>>>(pw, pb, dout, inp, mean, rstd, N, C);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  e = finalize(dweight, pw, chunks, C, s);
  if (e != cudaSuccess) return e;
  return finalize(dbias, pb, chunks, C, s);
}

cudaError_t column_sums_bf16(float* dst, float* partials, const bf16* src, std::int64_t rows, int cols,
                             cudaStream_t s) {
  const std::int64_t chunks = bf16_column_chunks(rows);
  const dim3 grid((cols + kThreads - 1) / kThreads, static_cast<unsigned>(chunks));
  column_partials_kernel<<<grid, kThreads, 0, s>>>(partials, src, rows, cols);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  return finalize(dst, partials, chunks, cols, s);
}

}  // namespace trainer::gpu
