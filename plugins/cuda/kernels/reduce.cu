// Deterministic reductions: sum_squares (double, two passes), column_partials and
// column_finalize (sums over rows in fixed chunks, for bias and layernorm parameter grads).
#include "kernels/common.cuh"
#include "kernels/reduce.cuh"

namespace trainer::gpu {
namespace {

__global__ void squares_partial_kernel(double* partials, const float* x, std::int64_t n) {
  __shared__ double shared[32];
  const std::int64_t i0 = blockIdx.x * kSquaresChunk;
  const std::int64_t i1 = i0 + kSquaresChunk < n ? i0 + kSquaresChunk : n;
  double s = 0.0;
  for (std::int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const double v = x[i];
    s += v * v;
  }
  s = block_sum(s, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void squares_final_kernel(double* out, const double* partials, std::int64_t count) {
  __shared__ double shared[32];
  double s = 0.0;
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
  s = block_sum(s, shared);
  if (threadIdx.x == 0) *out = s;
}

// grid (ceil(cols / threads), chunks): thread c adds its column over the chunk's rows in order.
__global__ void column_partials_kernel(float* partials, const float* src, std::int64_t rows, int cols) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const std::int64_t r0 = blockIdx.y * kColumnChunk;
  const std::int64_t r1 = r0 + kColumnChunk < rows ? r0 + kColumnChunk : rows;
  float acc = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r) acc += src[r * cols + c];
  partials[blockIdx.y * static_cast<std::int64_t>(cols) + c] = acc;
}

__global__ void column_finalize_kernel(float* dst, const float* partials, std::int64_t chunks, int cols) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float acc = 0.0f;
  for (std::int64_t k = 0; k < chunks; ++k) acc += partials[k * cols + c];
  dst[c] += acc;
}

}  // namespace

cudaError_t sum_squares(double* scratch, const float* x, std::int64_t n, cudaStream_t s) {
  const std::int64_t chunks = sum_squares_partials(n);
  squares_partial_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, s>>>(scratch + 1, x, n);
  squares_final_kernel<<<1, 1024, 0, s>>>(scratch, scratch + 1, chunks);
  return cudaGetLastError();
}

cudaError_t column_partials(float* partials, const float* src, std::int64_t rows, int cols, cudaStream_t s) {
  const dim3 grid((cols + kThreads - 1) / kThreads, static_cast<unsigned>(column_chunks(rows)));
  column_partials_kernel<<<grid, kThreads, 0, s>>>(partials, src, rows, cols);
  return cudaGetLastError();
}

cudaError_t column_finalize(float* dst, const float* partials, std::int64_t chunks, int cols, cudaStream_t s) {
  column_finalize_kernel<<<(cols + kThreads - 1) / kThreads, kThreads, 0, s>>>(dst, partials, chunks, cols);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
