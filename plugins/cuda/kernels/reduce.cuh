// Deterministic reductions: sum_squares (two passes, double) and column sums over rows
// (fixed row chunks, partials added in chunk order). Launchers take caller-owned scratch.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

// sum_squares: fixed chunks of kSquaresChunk elements, one partial each, then one block adds
// the partials. The chunking depends on n alone, never on the device or the timing.
constexpr std::int64_t kSquaresChunk = 1 << 13;
inline std::int64_t sum_squares_partials(std::int64_t n) { return (n + kSquaresChunk - 1) / kSquaresChunk; }
// scratch: sum_squares_partials(n) + 1 doubles; the total lands in scratch[0].
cudaError_t sum_squares(double* scratch, const float* x, std::int64_t n, cudaStream_t s);

// Column sums: rows are split into chunks of kColumnChunk; partials[chunk, c] holds one
// chunk's sum (rows in order), and the finalize step adds chunks in order.
constexpr std::int64_t kColumnChunk = 128;
inline std::int64_t column_chunks(std::int64_t rows) { return (rows + kColumnChunk - 1) / kColumnChunk; }
// partials: column_chunks(rows) * cols floats.
cudaError_t column_partials(float* partials, const float* src, std::int64_t rows, int cols, cudaStream_t s);
// dst[c] += sum over chunks (in order) of partials[chunk, c].
cudaError_t column_finalize(float* dst, const float* partials, std::int64_t chunks, int cols, cudaStream_t s);

}  // namespace trainer::gpu
