// Sums kept on the device (device_sums.cuh): the step's loss accumulator, the multi-tensor sum
// of squares for the gradient norm, and f64 <-> f32 conversion of those scalars. The products
// and sums that must match the host's double arithmetic use __dmul_rn/__dadd_rn, which the
// compiler never contracts into a fused multiply-add.
#include "kernels/common.cuh"
#include "kernels/device_sums.cuh"
#include "kernels/reduce.cuh"

namespace trainer::gpu {
namespace {

__global__ void accumulate_sum_kernel(double* acc, const float* xf, const double* xd, std::int64_t n, double scale) {
  __shared__ double shared[32];
  double s = 0.0;
  if (xf) {
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) s += static_cast<double>(xf[i]);
  } else {
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xd[i];
  }
  s = block_sum(s, shared);
  if (threadIdx.x == 0) acc[0] = __dadd_rn(acc[0], __dmul_rn(scale, s));
}

// One block per chunk of the batch: the same loop as reduce.cu's squares_partial_kernel.
// __grid_constant__: the batch is indexed by a runtime term, which would otherwise copy the
// whole parameter struct into each thread's local memory.
__global__ void squares_chunks_kernel(double* partials, const __grid_constant__ SquaresBatch batch) {
  __shared__ double shared[32];
  const std::int64_t chunk = blockIdx.x;
  int term = 0;  // the last term starting at or before this chunk (empty terms own no chunk)
  while (term + 1 < batch.count && batch.first_chunk[term + 1] <= chunk) ++term;
  const float* x = batch.x[term];
  const std::int64_t n = batch.n[term];
  const std::int64_t i0 = (chunk - batch.first_chunk[term]) * kSquaresChunk;
  const std::int64_t i1 = i0 + kSquaresChunk < n ? i0 + kSquaresChunk : n;
  double s = 0.0;
  for (std::int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const double v = x[i];
    s += v * v;
  }
  s = block_sum(s, shared);
  if (threadIdx.x == 0) partials[chunk] = s;
}

// One 1024-thread block per term: the same tree as reduce.cu's squares_final_kernel.
__global__ void squares_terms_kernel(double* term_values, const double* partials,
                                     const __grid_constant__ SquaresBatch batch) {
  __shared__ double shared[32];
  const int term = blockIdx.x;
  const std::int64_t first = batch.first_chunk[term];
  const std::int64_t count = batch.first_chunk[term + 1] - first;
  double s = 0.0;
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) s += partials[first + i];
  s = block_sum(s, shared);
  if (threadIdx.x == 0) term_values[term] = __dmul_rn(batch.scale[term], s);
}

// The values are staged in shared memory by all threads, then thread 0 adds them in order.
constexpr int kOrderedStage = 1024;
__global__ void sum_in_order_kernel(double* out_f64, float* out_f32, const double* values, int count) {
  __shared__ double stage[kOrderedStage];
  double total = 0.0;
  for (int base = 0; base < count; base += kOrderedStage) {
    const int here = count - base < kOrderedStage ? count - base : kOrderedStage;
    for (int i = threadIdx.x; i < here; i += blockDim.x) stage[i] = values[base + i];
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int i = 0; i < here; ++i) total = __dadd_rn(total, stage[i]);
    }
    __syncthreads();
  }
  if (threadIdx.x != 0) return;
  if (out_f64) {
    *out_f64 = total;
  } else {
    *out_f32 = __double2float_rn(total);
  }
}

__global__ void f64_to_f32_kernel(float* dst, const double* src, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = __double2float_rn(src[i]);
  }
}

__global__ void f32_to_f64_kernel(double* dst, const float* src, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = static_cast<double>(src[i]);
  }
}

}  // namespace

cudaError_t accumulate_sum(double* acc, const float* x_f32, const double* x_f64, std::int64_t n, double scale,
                           cudaStream_t s) {
  accumulate_sum_kernel<<<1, kAccumulateThreads, 0, s>>>(acc, x_f32, x_f64, n, scale);
  return cudaGetLastError();
}

cudaError_t sum_squares_batch(double* term_values, double* partials, const SquaresBatch& batch, cudaStream_t s) {
  if (batch.count <= 0) return cudaSuccess;
  const std::int64_t chunks = batch.first_chunk[batch.count];
  if (chunks > 0) squares_chunks_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, s>>>(partials, batch);
  squares_terms_kernel<<<static_cast<unsigned>(batch.count), 1024, 0, s>>>(term_values, partials, batch);
  return cudaGetLastError();
}

cudaError_t sum_in_order(double* out_f64, float* out_f32, const double* values, int count, cudaStream_t s) {
  sum_in_order_kernel<<<1, 256, 0, s>>>(out_f64, out_f32, values, count);
  return cudaGetLastError();
}

cudaError_t convert_f64_to_f32(float* dst, const double* src, std::int64_t n, cudaStream_t s) {
  f64_to_f32_kernel<<<grid_for(n), kThreads, 0, s>>>(dst, src, n);
  return cudaGetLastError();
}

cudaError_t convert_f32_to_f64(double* dst, const float* src, std::int64_t n, cudaStream_t s) {
  f32_to_f64_kernel<<<grid_for(n), kThreads, 0, s>>>(dst, src, n);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
