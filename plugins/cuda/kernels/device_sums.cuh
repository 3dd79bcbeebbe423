// Launchers for sums kept on the device: accumulate_sum, SquaresBatch + sum_squares_batch +
// sum_in_order (Backend::sum_squares_many), convert_f64_to_f32 and convert_f32_to_f64.
// Deterministic: fixed chunks and fixed reduction trees, no atomics, no dependence on timing.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

// acc[0] += scale * (x[0] + ... + x[n-1]) in double: one block of kAccumulateThreads, thread t
// adding elements t, t + kAccumulateThreads, ..., then the block's fixed tree. Exactly one of
// x_f32 and x_f64 is non-null. For a step's per-row losses (n up to a few hundred thousand).
constexpr int kAccumulateThreads = 1024;
cudaError_t accumulate_sum(double* acc, const float* x_f32, const double* x_f64, std::int64_t n, double scale,
                           cudaStream_t s);

// Up to kSquaresBatchTerms tensors of one sum_squares_many, passed by value as the kernels'
// parameter (no upload). Each term is cut into the chunks of sum_squares (kSquaresChunk
// elements, reduce.cuh); first_chunk is the running chunk count, first_chunk[0] == 0.
constexpr int kSquaresBatchTerms = 64;
struct SquaresBatch {
  const float* x[kSquaresBatchTerms];
  std::int64_t n[kSquaresBatchTerms];
  double scale[kSquaresBatchTerms];
  std::int64_t first_chunk[kSquaresBatchTerms + 1];
  int count;
};
// term_values[i] = batch.scale[i] * (term i's sum of squares, as gpu::sum_squares takes it:
// the same chunk partials added by the same 1024-thread tree). partials: first_chunk[count]
// doubles of scratch.
cudaError_t sum_squares_batch(double* term_values, double* partials, const SquaresBatch& batch, cudaStream_t s);
// values[0] + values[1] + ... + values[count-1], added one by one in that order in double,
// stored in *out_f64, or rounded to nearest into *out_f32 (exactly one is non-null).
cudaError_t sum_in_order(double* out_f64, float* out_f32, const double* values, int count, cudaStream_t s);

// Round to nearest even (f64 -> f32), exact (f32 -> f64).
cudaError_t convert_f64_to_f32(float* dst, const double* src, std::int64_t n, cudaStream_t s);
cudaError_t convert_f32_to_f64(double* dst, const float* src, std::int64_t n, cudaStream_t s);

}  // namespace trainer::gpu
