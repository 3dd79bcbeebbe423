// Elementwise kernels: residual, dropout (counter RNG, the CPU's exact mask), axpby, GELU
// forward/backward, AdamW, bias broadcast. Grid-stride loops over 64-bit indices.
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

// One element's update, shared by the one-tensor and the many-tensor kernels so that both
// give the same bits.
__device__ inline void adamw_element(float* param, const float* grad, float* m, float* v, std::int64_t i, float lr,
                                     float beta1, float beta2, float eps, float wd, float c1, float c2) {
  const float g = grad[i];
  const float mi = beta1 * m[i] + (1.0f - beta1) * g;
  const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  const float mhat = mi / c1;
  const float vhat = vi / c2;
  const float p = param[i];
  param[i] = p - lr * (mhat / (sqrtf(vhat) + eps) + wd * p);
}

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, std::int64_t n, float lr,
                             float beta1, float beta2, float eps, float wd, float c1, float c2) {
  GRID_STRIDE(i, n) adamw_element(param, grad, m, v, i, lr, beta1, beta2, eps, wd, c1, c2);
}

// One block per chunk.
__global__ void adamw_chunks_kernel(const AdamWChunk* chunks, float lr, float beta1, float beta2, float eps,
                                    float c1, float c2) {
  const AdamWChunk c = chunks[blockIdx.x];
  for (std::int64_t i = threadIdx.x; i < c.n; i += blockDim.x) {
    adamw_element(c.param, c.grad, c.m, c.v, i, lr, beta1, beta2, eps, c.weight_decay, c1, c2);
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
  adamw_kernel<<<grid_for(n), kThreads, 0, s>>>(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay,
                                                 c1, c2);
  return cudaGetLastError();
}

cudaError_t adamw_update_chunks(const AdamWChunk* chunks, int count, float lr, float beta1, float beta2, float eps,
                                float c1, float c2, cudaStream_t s) {
  if (count > 0) adamw_chunks_kernel<<<count, kThreads, 0, s>>>(chunks, lr, beta1, beta2, eps, c1, c2);
  return cudaGetLastError();
}

cudaError_t add_bias_rows(float* out, const float* bias, std::int64_t rows, int cols, cudaStream_t s) {
  const std::int64_t n = rows * cols;
  add_bias_kernel<<<grid_for(n), kThreads, 0, s>>>(out, bias, n, cols);
  return cudaGetLastError();
}

}  // namespace trainer::gpu
