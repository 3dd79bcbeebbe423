// bf16 elementwise kernels: residual, dropout, GELU forward/backward, embedding gather, bias.
// Eight bf16 (16 bytes) per thread and iteration where sizes and alignment allow, else one.
#include <cstdint>

#include "kernels/bf16_common.cuh"
#include "kernels/common.cuh"
#include "kernels/elementwise_bf16.cuh"
#include "kernels/errors.hpp"

namespace trainer::gpu {
namespace {

constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi), as the f32 kernels
constexpr float kGeluCubic = 0.044715f;

struct alignas(16) Pack8 {
  bf16 v[8];
};

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// A functor f(float a, float b) -> float over two inputs (b may be unused), vectorised.
template <class F>
__global__ void binary_pack_kernel(bf16* out, const bf16* a, const bf16* b, std::int64_t packs, F f) {
  TRAINER_GRID_STRIDE(i, packs) {
    const Pack8 pa = reinterpret_cast<const Pack8*>(a)[i];
    const Pack8 pb = b ? reinterpret_cast<const Pack8*>(b)[i] : pa;
    Pack8 po;
#pragma unroll
    for (int j = 0; j < 8; ++j) po.v[j] = __float2bfloat16_rn(f(load_f(pa.v[j]), load_f(pb.v[j])));
    reinterpret_cast<Pack8*>(out)[i] = po;
  }
}

template <class F>
__global__ void binary_kernel(bf16* out, const bf16* a, const bf16* b, std::int64_t n, F f) {
  TRAINER_GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(f(load_f(a[i]), b ? load_f(b[i]) : 0.0f));
}

template <class F>
cudaError_t launch_binary(bf16* out, const bf16* a, const bf16* b, std::int64_t n, F f, cudaStream_t s) {
  if (n % 8 == 0 && aligned16(out) && aligned16(a) && (!b || aligned16(b))) {
    binary_pack_kernel<<<grid_for(n / 8), kThreads, 0, s>>>(out, a, b, n / 8, f);
  } else {
    binary_kernel<<<grid_for(n), kThreads, 0, s>>>(out, a, b, n, f);
  }
  return cudaGetLastError();
}

struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};

struct Gelu {
  __device__ float operator()(float x, float) const {
    const float u = kGeluScale * (x + kGeluCubic * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
  }
};

struct GeluGrad {  // (x, dout) -> dinp
  __device__ float operator()(float x, float g) const {
    const float u = kGeluScale * (x + kGeluCubic * x * x * x);
    const float th = tanhf(u);
    const float sech2 = 1.0f - th * th;
    const float du = kGeluScale * (1.0f + 3.0f * kGeluCubic * x * x);
    return g * (0.5f * (1.0f + th) + 0.5f * x * sech2 * du);
  }
};

__global__ void dropout_kernel(bf16* out, const bf16* inp, float p, float scale, RngKey key, std::int64_t n) {
  TRAINER_GRID_STRIDE(i, n) {
    const bool keep = rng_uniform(key, static_cast<std::uint64_t>(i)) >= p;
    out[i] = __float2bfloat16_rn(keep ? load_f(inp[i]) * scale : 0.0f);
  }
}

__global__ void embedding_kernel(bf16* out, const std::int32_t* tokens, const bf16* wte, const bf16* wpe,
                                 std::int64_t rows, int T, int C, std::int64_t vocab, unsigned* error_word) {
  const std::int64_t n = rows * C;
  TRAINER_GRID_STRIDE(i, n) {
    const std::int64_t r = i / C;
    const int c = static_cast<int>(i % C);
    const std::int32_t tok = tokens[r];
    if (tok < 0 || tok >= vocab) {
      out[i] = __float2bfloat16_rn(NAN);
      atomicOr(error_word, static_cast<unsigned>(kBadTokenForward));
      continue;
    }
    out[i] = __float2bfloat16_rn(load_f(wte[static_cast<std::int64_t>(tok) * C + c]) +
                                 load_f(wpe[(r % T) * C + c]));
  }
}

__global__ void add_bias_kernel(bf16* out, const bf16* bias, std::int64_t n, int cols) {
  TRAINER_GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(load_f(out[i]) + load_f(bias[i % cols]));
}

}  // namespace

cudaError_t add_bias_rows_bf16(bf16* out, const bf16* bias, std::int64_t rows, int cols, cudaStream_t s) {
  const std::int64_t n = rows * cols;
  add_bias_kernel<<<grid_for(n), kThreads, 0, s>>>(out, bias, n, cols);
  return cudaGetLastError();
}

cudaError_t residual_forward_bf16(bf16* out, const bf16* a, const bf16* b, std::int64_t n, cudaStream_t s) {
  return launch_binary(out, a, b, n, Add{}, s);
}

cudaError_t dropout_apply_bf16(bf16* out, const bf16* inp, float p, float scale, RngKey key, std::int64_t n,
                               cudaStream_t s) {
  dropout_kernel<<<grid_for(n), kThreads, 0, s>>>(out, inp, p, scale, key, n);
  return cudaGetLastError();
}

cudaError_t gelu_forward_bf16(bf16* out, const bf16* inp, std::int64_t n, cudaStream_t s) {
  return launch_binary(out, inp, static_cast<const bf16*>(nullptr), n, Gelu{}, s);
}

cudaError_t gelu_backward_bf16(bf16* dinp, const bf16* inp, const bf16* dout, std::int64_t n, cudaStream_t s) {
  return launch_binary(dinp, inp, dout, n, GeluGrad{}, s);
}

cudaError_t embedding_forward_bf16(bf16* out, const std::int32_t* tokens, const bf16* wte, const bf16* wpe, int B,
                                   int T, int C, std::int64_t vocab, unsigned* error_word, cudaStream_t s) {
  const std::int64_t rows = static_cast<std::int64_t>(B) * T;
  embedding_kernel<<<grid_for(rows * C), kThreads, 0, s>>>(out, tokens, wte, wpe, rows, T, C, vocab, error_word);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
