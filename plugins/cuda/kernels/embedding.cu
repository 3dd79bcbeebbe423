// Embedding kernels: forward gather, backward through a stable radix sort of the tokens
// (CUB), so every vocabulary row is summed by one thread per column in a fixed order.
#include <cub/device/device_radix_sort.cuh>

#include "kernels/common.cuh"
#include "kernels/embedding.cuh"
#include "kernels/errors.hpp"

namespace trainer::gpu {
namespace {

__global__ void embedding_forward_kernel(float* out, const std::int32_t* tokens, const float* wte,
                                         const float* wpe, std::int64_t rows, int T, int C, std::int64_t vocab,
                                         unsigned* error_word) {
  const std::int64_t n = rows * C;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / C;
    const int c = static_cast<int>(i % C);
    const std::int32_t tok = tokens[r];
    if (tok < 0 || tok >= vocab) {
      out[i] = NAN;
      atomicOr(error_word, static_cast<unsigned>(kBadTokenForward));
      continue;
    }
    out[i] = wte[static_cast<std::int64_t>(tok) * C + c] + wpe[(r % T) * C + c];
  }
}

// One thread per (t, c): batches in order, from the old value, as the CPU.
__global__ void embedding_dwpe_kernel(float* dwpe, const float* dout, int B, int T, int C) {
  const std::int64_t n = static_cast<std::int64_t>(T) * C;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float acc = dwpe[i];
    for (int b = 0; b < B; ++b) acc += dout[static_cast<std::int64_t>(b) * n + i];
    dwpe[i] = acc;
  }
}

__global__ void iota_kernel(std::int32_t* v, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    v[i] = static_cast<std::int32_t>(i);
  }
}

// Block i handles sorted position i if it starts a run of equal tokens: each thread owns
// columns and adds the run's rows (ascending positions, thanks to the stable sort).
__global__ void embedding_dwte_kernel(float* dwte, const float* dout, const std::int32_t* keys,
                                      const std::int32_t* positions, std::int64_t rows, int C, std::int64_t vocab,
                                      unsigned* error_word) {
  const std::int64_t i = blockIdx.x;
  const std::int32_t tok = keys[i];
  if (i > 0 && keys[i - 1] == tok) return;
  if (tok < 0 || tok >= vocab) {
    if (threadIdx.x == 0) atomicOr(error_word, static_cast<unsigned>(kBadTokenBackward));
    return;
  }
  float* row = dwte + static_cast<std::int64_t>(tok) * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = row[c];
    for (std::int64_t j = i; j < rows && keys[j] == tok; ++j) {
      acc += dout[static_cast<std::int64_t>(positions[j]) * C + c];
    }
    row[c] = acc;
  }
}

std::size_t align_up(std::size_t n) { return (n + 255) / 256 * 256; }

std::size_t sort_temp_bytes(std::int64_t rows) {
  std::size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const std::int32_t*>(nullptr),
                                  static_cast<std::int32_t*>(nullptr), static_cast<const std::int32_t*>(nullptr),
                                  static_cast<std::int32_t*>(nullptr), static_cast<int>(rows));
  return bytes;
}

}  // namespace

cudaError_t embedding_forward(float* out, const std::int32_t* tokens, const float* wte, const float* wpe,
                              int B, int T, int C, std::int64_t vocab, unsigned* error_word, cudaStream_t s) {
  const std::int64_t rows = static_cast<std::int64_t>(B) * T;
  embedding_forward_kernel<<<grid_for(rows * C), kThreads, 0, s>>>(out, tokens, wte, wpe, rows, T, C, vocab,
                                                                    error_word);
  return cudaGetLastError();
}

std::size_t embedding_backward_scratch_bytes(std::int64_t rows) {
  // positions in, sorted keys, sorted positions, then CUB's temporary storage.
  return 3 * align_up(static_cast<std::size_t>(rows) * sizeof(std::int32_t)) + align_up(sort_temp_bytes(rows));
}

cudaError_t embedding_backward(float* dwte, float* dwpe, const float* dout, const std::int32_t* tokens,
                               int B, int T, int C, std::int64_t vocab, void* scratch,
                               std::size_t scratch_bytes, unsigned* error_word, cudaStream_t s) {
  const std::int64_t rows = static_cast<std::int64_t>(B) * T;
  embedding_dwpe_kernel<<<grid_for(static_cast<std::int64_t>(T) * C), kThreads, 0, s>>>(dwpe, dout, B, T, C);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;

  const std::size_t slot = align_up(static_cast<std::size_t>(rows) * sizeof(std::int32_t));
  auto* base = static_cast<unsigned char*>(scratch);
  auto* positions = reinterpret_cast<std::int32_t*>(base);
  auto* sorted_keys = reinterpret_cast<std::int32_t*>(base + slot);
  auto* sorted_positions = reinterpret_cast<std::int32_t*>(base + 2 * slot);
  void* temp = base + 3 * slot;
  std::size_t temp_bytes = scratch_bytes - 3 * slot;

  iota_kernel<<<grid_for(rows), kThreads, 0, s>>>(positions, rows);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  // All 32 key bits: negative (bad) tokens sort first and are then skipped and reported.
  e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, tokens, sorted_keys, positions, sorted_positions,
                                      static_cast<int>(rows), 0, 32, s);
  if (e != cudaSuccess) return e;
  const int threads = C < kThreads ? ((C + 31) / 32) * 32 : kThreads;
  embedding_dwte_kernel<<<static_cast<unsigned>(rows), threads, 0, s>>>(dwte, dout, sorted_keys,
                                                                         sorted_positions, rows, C, vocab,
                                                                         error_word);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
