// Attention benchmark (not a test): times the fused flash attention (bf16 and f32) against the
// materialised f32 attention the cuda backend used before (cuBLAS S = QK^T into [B,NH,T,T],
// causal softmax kernel, P V; backward likewise), forward and backward, at one shape.
// Prints milliseconds (median of --reps after warm-up, CUDA events), TFLOP/s counted as
// 4*B*NH*T^2*hd/2 forward (causal half) and 2.5x that backward, and the relative difference
// of each flash output against the materialised f32 one.
//   cuda_attention_bench [B T C NH] [--reps N]      (default 16 1024 768 12, 20 reps)
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "kernels/attention.cuh"
#include "kernels/flash_attention.cuh"

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
void check(cublasStatus_t e, const char* what) {
  if (e != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s: cuBLAS status %d\n", what, static_cast<int>(e));
    std::exit(1);
  }
}

template <class T>
T* device_alloc(std::size_t n) {
  void* p = nullptr;
  check(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc");
  return static_cast<T*>(p);
}

float median_ms(const std::function<void()>& run, int reps, cudaStream_t s) {
  for (int i = 0; i < 3; ++i) run();
  check(cudaStreamSynchronize(s), "warm-up");
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    check(cudaEventRecord(a, s), "record");
    run();
    check(cudaEventRecord(b, s), "record");
    check(cudaEventSynchronize(b), "sync");
    float t = 0;
    check(cudaEventElapsedTime(&t, a, b), "elapsed");
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::vector<float> download_f32(const float* d, std::size_t n) {
  std::vector<float> h(n);
  check(cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost), "download");
  return h;
}
std::vector<float> download_bf16(const __nv_bfloat16* d, std::size_t n) {
  std::vector<__nv_bfloat16> h(n);
  check(cudaMemcpy(h.data(), d, n * 2, cudaMemcpyDeviceToHost), "download");
  std::vector<float> f(n);
  for (std::size_t i = 0; i < n; ++i) f[i] = __bfloat162float(h[i]);
  return f;
}
double rel(const std::vector<float>& x, const std::vector<float>& ref) {
  double d = 0, r = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) return INFINITY;
    d += (double(x[i]) - ref[i]) * (double(x[i]) - ref[i]);
    r += double(ref[i]) * ref[i];
  }
  return std::sqrt(d / r);
}

// The cuda backend's attention before flash attention (commit 9662581), f32, T x T materialised.
struct Materialised {
  cublasHandle_t h;
  int B, T, C, NH;
  void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* A,
            long long lda, long long sa, const float* Bm, long long ldb, long long sb, float beta, float* Cm,
            long long ldc, long long sc) {
    check(cublasSgemmStridedBatched(h, ta, tb, m, n, k, &alpha, A, int(lda), sa, Bm, int(ldb), sb, &beta, Cm, int(ldc),
                                    sc, NH),
          "cublasSgemmStridedBatched");
  }
  void forward(float* out, float* att, const float* qkv, cudaStream_t s) {
    const int hs = C / NH;
    const long long C3 = 3LL * C, TT = 1LL * T * T;
    const float scale = 1.0f / std::sqrt(float(hs));
    for (int b = 0; b < B; ++b) {
      const float* q = qkv + b * T * C3;
      gemm(CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, scale, q + C, C3, hs, q, C3, hs, 0.0f, att + b * NH * TT, T, TT);
    }
    check(trainer::gpu::softmax_causal_forward(att, 1LL * B * NH * T, T, s), "softmax");
    for (int b = 0; b < B; ++b) {
      gemm(CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, 1.0f, qkv + b * T * C3 + 2 * C, C3, hs, att + b * NH * TT, T, TT, 0.0f,
           out + 1LL * b * T * C, C, hs);
    }
  }
  void backward(float* dqkv, float* datt, const float* dout, const float* qkv, const float* att, cudaStream_t s) {
    const int hs = C / NH;
    const long long C3 = 3LL * C, TT = 1LL * T * T;
    const float scale = 1.0f / std::sqrt(float(hs));
    for (int b = 0; b < B; ++b) {
      const float* v = qkv + b * T * C3 + 2 * C;
      const float* g = dout + 1LL * b * T * C;
      gemm(CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, 1.0f, v, C3, hs, g, C, hs, 0.0f, datt + b * NH * TT, T, TT);
      gemm(CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, 1.0f, g, C, hs, att + b * NH * TT, T, TT, 0.0f,
           dqkv + b * T * C3 + 2 * C, C3, hs);
    }
    check(trainer::gpu::softmax_causal_backward(datt, att, 1LL * B * NH * T, T, s), "softmax backward");
    for (int b = 0; b < B; ++b) {
      const float* q = qkv + b * T * C3;
      const float* ds = datt + b * NH * TT;
      gemm(CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, scale, q + C, C3, hs, ds, T, TT, 0.0f, dqkv + b * T * C3, C3, hs);
      gemm(CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, scale, q, C3, hs, ds, T, TT, 0.0f, dqkv + b * T * C3 + C, C3, hs);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  int B = 16, T = 1024, C = 768, NH = 12, reps = 20;
  std::vector<int> dims;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      dims.push_back(std::atoi(argv[i]));
    }
  }
  if (dims.size() == 4) B = dims[0], T = dims[1], C = dims[2], NH = dims[3];
  const int hs = C / NH;
  const std::size_t n_qkv = std::size_t(B) * T * 3 * C, n_out = std::size_t(B) * T * C, n_lse = std::size_t(B) * NH * T;
  const std::size_t n_att = std::size_t(B) * NH * T * T;
  cudaStream_t s;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
  cublasHandle_t h;
  check(cublasCreate(&h), "cublasCreate");
  check(cublasSetStream(h, s), "cublasSetStream");
  check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");  // f32 FFMA, as the backend

  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> qkv(n_qkv), dout(n_out);
  for (auto& x : qkv) x = dist(rng);
  for (auto& x : dout) x = dist(rng);
  std::vector<__nv_bfloat16> qkv16(n_qkv), dout16(n_out);
  for (std::size_t i = 0; i < n_qkv; ++i) qkv16[i] = __float2bfloat16_rn(qkv[i]), qkv[i] = __bfloat162float(qkv16[i]);
  for (std::size_t i = 0; i < n_out; ++i) dout16[i] = __float2bfloat16_rn(dout[i]), dout[i] = __bfloat162float(dout16[i]);

  float *x32 = device_alloc<float>(n_qkv), *g32 = device_alloc<float>(n_out), *o32 = device_alloc<float>(n_out);
  float *dx32 = device_alloc<float>(n_qkv), *lse = device_alloc<float>(n_lse), *delta = device_alloc<float>(n_lse);
  auto *x16 = device_alloc<__nv_bfloat16>(n_qkv), *g16 = device_alloc<__nv_bfloat16>(n_out);
  auto *o16 = device_alloc<__nv_bfloat16>(n_out), *dx16 = device_alloc<__nv_bfloat16>(n_qkv);
  check(cudaMemcpy(x32, qkv.data(), n_qkv * 4, cudaMemcpyHostToDevice), "upload");
  check(cudaMemcpy(g32, dout.data(), n_out * 4, cudaMemcpyHostToDevice), "upload");
  check(cudaMemcpy(x16, qkv16.data(), n_qkv * 2, cudaMemcpyHostToDevice), "upload");
  check(cudaMemcpy(g16, dout16.data(), n_out * 2, cudaMemcpyHostToDevice), "upload");

  const double fwd_flop = 4.0 * B * NH * double(T) * T * hs / 2, bwd_flop = 2.5 * fwd_flop;
  std::printf("attention B %d T %d C %d NH %d (head size %d), median of %d runs\n", B, T, C, NH, hs, reps);
  std::printf("| variant | forward ms | backward ms | fwd+bwd ms | fwd TFLOP/s | bwd TFLOP/s | saved per layer |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  auto row = [&](const char* name, float f, float b, double saved_bytes) {
    std::printf("| %s | %.3f | %.3f | %.3f | %.1f | %.1f | %.1f MiB |\n", name, f, b, f + b, fwd_flop / f / 1e9,
                bwd_flop / b / 1e9, saved_bytes / 1048576.0);
  };
  const double out_bytes32 = n_out * 4.0, out_bytes16 = n_out * 2.0, lse_bytes = n_lse * 4.0;

  // Reference first: the materialised f32 path (also the accuracy reference).
  std::vector<float> ref_out, ref_dx;
  {
    float* att = device_alloc<float>(n_att);
    float* datt = device_alloc<float>(n_att);
    Materialised m{h, B, T, C, NH};
    const float f = median_ms([&] { m.forward(o32, att, x32, s); }, reps, s);
    const float b = median_ms([&] { m.backward(dx32, datt, g32, x32, att, s); }, reps, s);
    check(cudaStreamSynchronize(s), "materialised");
    ref_out = download_f32(o32, n_out);
    ref_dx = download_f32(dx32, n_qkv);
    row("materialised f32 (before)", f, b, out_bytes32 + n_att * 4.0);
    cudaFree(att);
    cudaFree(datt);
  }
  using trainer::gpu::flash_attention_backward;
  using trainer::gpu::flash_attention_forward;
  {
    const float f = median_ms([&] { check(flash_attention_forward(o32, lse, x32, false, B, T, C, NH, s), "fwd"); },
                              reps, s);
    const float b = median_ms(
        [&] { check(flash_attention_backward(dx32, delta, g32, x32, o32, lse, false, B, T, C, NH, s), "bwd"); }, reps,
        s);
    check(cudaStreamSynchronize(s), "flash f32");
    row("flash f32", f, b, out_bytes32 + lse_bytes);
    std::printf("flash f32 vs materialised: out %.2e, dqkv %.2e (relative)\n", rel(download_f32(o32, n_out), ref_out),
                rel(download_f32(dx32, n_qkv), ref_dx));
  }
  {
    const float f = median_ms([&] { check(flash_attention_forward(o16, lse, x16, true, B, T, C, NH, s), "fwd"); },
                              reps, s);
    const float b = median_ms(
        [&] { check(flash_attention_backward(dx16, delta, g16, x16, o16, lse, true, B, T, C, NH, s), "bwd"); }, reps,
        s);
    check(cudaStreamSynchronize(s), "flash bf16");
    row("flash bf16", f, b, out_bytes16 + lse_bytes);
    std::printf("flash bf16 vs materialised f32: out %.2e, dqkv %.2e (relative)\n",
                rel(download_bf16(o16, n_out), ref_out), rel(download_bf16(dx16, n_qkv), ref_dx));
  }
  cublasDestroy(h);
  return 0;
}
