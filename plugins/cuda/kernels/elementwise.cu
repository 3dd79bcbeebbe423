// Elementwise kernels: residual, dropout (counter RNG, the CPU's exact mask), axpby, GELU
// forward/backward, AdamW, bias broadcast. Grid-stride loops over 64-bit indices.
#include <cuda_bf16.h>

#include "kernels/common.cuh"
#include "kernels/elementwise.cuh"

namespace trainer::gpu {
namespace {

constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi), as the CPU kernel
constexpr float kGeluCubic = 0.044715f;

#define GRID_STRIDE(i, n) \
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

__global__ void residual_kernel(float* out, const float* a, const float* b, std::int64_t n) {
  GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

__global__ void dropout_kernel(float* out, const float* inp, float p, float scale, RngKey key,
                               std::int64_t n) {
  GRID_STRIDE(i, n) {
    const bool keep = rng_uniform(key, static_cast<std::uint64_t>(i)) >= p;
    out[i] = keep ? inp[i] * scale : 0.0f;
  }
}

__global__ void scale_kernel(float* y, float a, const float* x, std::int64_t n) {
  GRID_STRIDE(i, n) y[i] = a * x[i];
}

__global__ void axpby_kernel(float* y, float a, const float* x, float b, std::int64_t n) {
  GRID_STRIDE(i, n) y[i] = a * x[i] + b * y[i];
}

__global__ void gelu_forward_kernel(float* out, const float* inp, std::int64_t n) {
  GRID_STRIDE(i, n) {
    const float x = inp[i];
    const float u = kGeluScale * (x + kGeluCubic * x * x * x);
    out[i] = 0.5f * x * (1.0f + tanhf(u));
  }
}

__global__ void gelu_backward_kernel(float* dinp, const float* inp, const float* dout, std::int64_t n) {
  GRID_STRIDE(i, n) {
    const float x = inp[i];
    const float u = kGeluScale * (x + kGeluCubic * x * x * x);
    const float th = tanhf(u);
    const float sech2 = 1.0f - th * th;
    const float du = kGeluScale * (1.0f + 3.0f * kGeluCubic * x * x);
    dinp[i] = dout[i] * (0.5f * (1.0f + th) + 0.5f * x * sech2 * du);
  }
}

// One element's update, shared by every AdamW kernel so that all give the same bits.
struct AdamWStep {
  float lr, beta1, beta2, eps, wd, c1, c2;
  __device__ float operator()(float p, float g, float& m, float& v) const {
    m = beta1 * m + (1.0f - beta1) * g;
    v = beta2 * v + (1.0f - beta2) * g * g;
    const float mhat = m / c1;
    const float vhat = v / c2;
    return p - lr * (mhat / (sqrtf(vhat) + eps) + wd * p);
  }
};

__device__ inline void adamw_element(float* param, const float* grad, float* m, float* v, std::int64_t i,
                                     const AdamWStep& step) {
  float mi = m[i], vi = v[i];
  param[i] = step(param[i], grad[i], mi, vi);
  m[i] = mi;
  v[i] = vi;
}

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, std::int64_t n, AdamWStep step) {
  GRID_STRIDE(i, n) adamw_element(param, grad, m, v, i, step);
}

__device__ inline bool aligned(const void* p, unsigned bytes) {
  return (reinterpret_cast<std::uintptr_t>(p) & (bytes - 1)) == 0;
}

// One block per chunk. Where the chunk allows (16-byte aligned f32 tensors, a multiple of 4
// elements), 16-byte loads and stores: the update is bound by memory traffic (28 bytes per
// element, 30 with the bf16 copy), and 4-byte accesses left ~25% of the bandwidth unused.
__global__ void adamw_chunks_kernel(const AdamWChunk* chunks, AdamWStep step) {
  const AdamWChunk c = chunks[blockIdx.x];
  step.wd = c.weight_decay;
  auto* compute = static_cast<__nv_bfloat16*>(c.compute);
  const bool vec = c.n % 4 == 0 && aligned(c.param, 16) && aligned(c.grad, 16) && aligned(c.m, 16) &&
                   aligned(c.v, 16) && (!compute || aligned(compute, 8));
  if (vec) {
    const std::int64_t n4 = c.n / 4;
    for (std::int64_t i = threadIdx.x; i < n4; i += blockDim.x) {
      float4 p = reinterpret_cast<const float4*>(c.param)[i];
      const float4 g = reinterpret_cast<const float4*>(c.grad)[i];
      float4 m = reinterpret_cast<const float4*>(c.m)[i];
      float4 v = reinterpret_cast<const float4*>(c.v)[i];
      p.x = step(p.x, g.x, m.x, v.x);
      p.y = step(p.y, g.y, m.y, v.y);
      p.z = step(p.z, g.z, m.z, v.z);
      p.w = step(p.w, g.w, m.w, v.w);
      reinterpret_cast<float4*>(c.param)[i] = p;
      reinterpret_cast<float4*>(c.m)[i] = m;
      reinterpret_cast<float4*>(c.v)[i] = v;
      if (compute) {
        __nv_bfloat162 pair[2] = {__floats2bfloat162_rn(p.x, p.y), __floats2bfloat162_rn(p.z, p.w)};
        reinterpret_cast<uint2*>(compute)[i] = *reinterpret_cast<const uint2*>(pair);
      }
    }
    return;
  }
  for (std::int64_t i = threadIdx.x; i < c.n; i += blockDim.x) {
    adamw_element(c.param, c.grad, c.m, c.v, i, step);
    if (compute) compute[i] = __float2bfloat16_rn(c.param[i]);
  }
}

__global__ void add_bias_kernel(float* out, const float* bias, std::int64_t n, int cols) {
  GRID_STRIDE(i, n) out[i] += bias[i % cols];
}

}  // namespace

cudaError_t residual_forward(float* out, const float* a, const float* b, std::int64_t n, cudaStream_t s) {
  residual_kernel<<<grid_for(n), kThreads, 0, s>>>(out, a, b, n);
  return cudaGetLastError();
}

cudaError_t dropout_apply(float* out, const float* inp, float p, float scale, RngKey key, std::int64_t n,
                          cudaStream_t s) {
  dropout_kernel<<<grid_for(n), kThreads, 0, s>>>(out, inp, p, scale, key, n);
  return cudaGetLastError();
}

cudaError_t axpby(float* y, float a, const float* x, float b, std::int64_t n, cudaStream_t s) {
  // b == 0 must not read y (it may hold NaN): the BLAS convention the CPU backend follows.
  if (b == 0.0f) {
    scale_kernel<<<grid_for(n), kThreads, 0, s>>>(y, a, x, n);
  } else {
    axpby_kernel<<<grid_for(n), kThreads, 0, s>>>(y, a, x, b, n);
  }
  return cudaGetLastError();
}

cudaError_t gelu_forward(float* out, const float* inp, std::int64_t n, cudaStream_t s) {
  gelu_forward_kernel<<<grid_for(n), kThreads, 0, s>>>(out, inp, n);
  return cudaGetLastError();
}

cudaError_t gelu_backward(float* dinp, const float* inp, const float* dout, std::int64_t n, cudaStream_t s) {
  gelu_backward_kernel<<<grid_for(n), kThreads, 0, s>>>(dinp, inp, dout, n);
  return cudaGetLastError();
}

cudaError_t adamw_update(float* param, const float* grad, float* m, float* v, std::int64_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, float c1, float c2,
                         cudaStream_t s) {
  adamw_kernel<<<grid_for(n), kThreads, 0, s>>>(param, grad, m, v, n,
                                                 AdamWStep{lr, beta1, beta2, eps, weight_decay, c1, c2});
  return cudaGetLastError();
}

cudaError_t adamw_update_chunks(const AdamWChunk* chunks, int count, float lr, float beta1, float beta2, float eps,
                                float c1, float c2, cudaStream_t s) {
  // The weight decay is each chunk's own (the kernel sets it).
  if (count > 0) adamw_chunks_kernel<<<count, kThreads, 0, s>>>(chunks, AdamWStep{lr, beta1, beta2, eps, 0.0f, c1, c2});
  return cudaGetLastError();
}

cudaError_t add_bias_rows(float* out, const float* bias, std::int64_t rows, int cols, cudaStream_t s) {
  const std::int64_t n = rows * cols;
  add_bias_kernel<<<grid_for(n), kThreads, 0, s>>>(out, bias, n, cols);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
