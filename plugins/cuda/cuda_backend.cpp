// The cuda backend: f32 tensors in device memory from a caching pool, one compute stream,
// cuBLAS (f32, no TF32) for the matrix products and kernels/ for everything else. Ops whose
// activations are bf16 (precision: bf16) go to Bf16Ops (cuBLASLt, bf16 kernels). Host code
// only: each op checks its tensors like the cpu backend (present, on the cuda device, of the
// right dtype and element count; std::invalid_argument naming the op), then enqueues work.
// Every CUDA and cuBLAS status is checked and turned into std::runtime_error naming the op.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bf16_ops.hpp"
#include "device_pool.hpp"
#include "kernels/crossentropy.cuh"
#include "kernels/crossentropy_shard.cuh"
#include "kernels/device_sums.cuh"
#include "kernels/elementwise.cuh"
#include "kernels/embedding.cuh"
#include "kernels/errors.hpp"
#include "kernels/flash_attention.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/reduce.cuh"
#include "lt_matmul.hpp"
#include "op_profiler.hpp"
#include "trainer/backend.hpp"
#include "trainer/op_checks.hpp"
#include "upload_staging.hpp"

namespace trainer::gpu {
namespace {

constexpr OpChecks kChecks{"cuda backend", Device::cuda, "device (cuda) memory"};

void check_cuda(cudaError_t status, const char* op, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("cuda backend: ") + op + ": " + what + " failed: " +
                             cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
}

void check_cublas(cublasStatus_t status, const char* op, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cuda backend: ") + op + ": " + what + " failed: " +
                             cublasGetStatusName(status) + ": " + cublasGetStatusString(status));
  }
}

float* f32(const Tensor& t) { return t ? t.data_as<float>() : nullptr; }
const std::int32_t* i32(const Tensor& t) { return t.data_as<const std::int32_t>(); }

constexpr std::size_t kCublasWorkspace = 32u << 20;

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, bool deterministic, bool profile, bool poison)
      : device_(device), poison_(poison), pool_(std::make_shared<DevicePool>(device)) {
    const char* op = "create";
    check_cuda(cudaSetDevice(device_), op, "cudaSetDevice");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), op, "cudaStreamCreate");
    check_cublas(cublasCreate(&cublas_), op, "cublasCreate");
    check_cublas(cublasSetStream(cublas_, stream_), op, "cublasSetStream");
    // Plain f32 arithmetic: no TF32 tensor cores, so products match the CPU to ~1e-6.
    check_cublas(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH), op, "cublasSetMathMode");
    // A fixed workspace: cuBLAS allocates nothing during a step (and later, graph capture works).
    workspace_ = std::make_unique<Scratch>(pool_, kCublasWorkspace, op);
    check_cublas(cublasSetWorkspace(cublas_, workspace_->as<void>(), kCublasWorkspace), op, "cublasSetWorkspace");
    error_word_ = std::make_unique<Scratch>(pool_, sizeof(unsigned), op);
    // cuBLASLt (the bf16 products) shares the workspace: both run on the one stream.
    lt_ = std::make_unique<LtMatmul>(stream_, workspace_->as<void>(), kCublasWorkspace, deterministic);
    bf16_ = std::make_unique<Bf16Ops>(*this, stream_, *lt_, error_word());
    if (profile) profiler_ = std::make_unique<OpProfiler>();
    check_cuda(cudaMemsetAsync(error_word_->as<unsigned>(), 0, sizeof(unsigned), stream_), op, "cudaMemsetAsync");
    check_cuda(cudaStreamSynchronize(stream_), op, "cudaStreamSynchronize");
  }

  ~CudaBackend() override {
    // Teardown errors are ignored: nothing can be done about them, and at exit the runtime
    // may be unloading. Queued work finishes before the handle and stream go.
    if (cudaSetDevice(device_) == cudaSuccess) cudaStreamSynchronize(stream_);
    if (profiler_) {
      profiler_->resolve();
      profiler_->report(stderr);
    }
    constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
    std::fprintf(stderr,
                 "cuda backend: peak device memory reserved by the caching pool: %.2f GiB (peak in tensors and "
                 "scratch: %.2f GiB)\n",
                 static_cast<double>(pool_->peak_reserved()) / kGiB, static_cast<double>(pool_->peak_live()) / kGiB);
    profiler_.reset();
    bf16_.reset();
    lt_.reset();
    workspace_.reset();
    error_word_.reset();
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda; }
  const char* name() const override { return "cuda"; }
  // For the nccl comm plugin: it orders its stream after this one, and this one after it.
  void* native_stream() override { return stream_; }
  int native_device() const override { return device_; }

  Tensor allocate(const Shape& shape, DType dtype) override {
    for (auto d : shape) {
      if (d < 0) throw std::invalid_argument("cuda backend: allocate: negative dimension in " + shape_string(shape));
    }
    const OpTiming timing = enter("allocate");
    const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
    const std::size_t cls = DevicePool::size_class(bytes);
    void* p = pool_->take(cls, "allocate");
    std::shared_ptr<void> storage(p, [pool = pool_, cls](void* q) { pool->give(q, cls); });
    // All bits set: NaN in f32 and bf16, -1 in i32, so a kernel that reads what nobody wrote
    // shows it in the loss instead of reusing an earlier tensor's values.
    if (poison_) check_cuda(cudaMemsetAsync(p, 0xFF, cls, stream_), "allocate", "cudaMemsetAsync");
    return Tensor(std::move(storage), p, shape, dtype, Device::cuda);
  }

  void fill_zero(const Tensor& t) override {
    if (!t) return;
    kChecks.tensor("fill_zero", "t", t, t.dtype());
    const OpTiming timing = enter("fill_zero");
    check_cuda(cudaMemsetAsync(t.data(), 0, t.bytes(), stream_), "fill_zero", "cudaMemsetAsync");
  }

  // The host buffer may be reused as soon as the call returns. Small copies (a micro-batch's
  // tokens) go through page-locked staging and do not wait for the stream; larger ones
  // (parameters, checkpoints) wait.
  void copy_from_host(const Tensor& dst, const void* src) override {
    if (!dst) return;
    const char* op = "copy_from_host";
    kChecks.copy_from_host(dst, src);
    const OpTiming timing = enter(op);
    if (dst.bytes() <= gpu::UploadStaging::kSlotBytes) {
      check_cuda(upload_staging_.upload(dst.data(), src, dst.bytes(), stream_), op, "staged upload");
      return;
    }
    check_cuda(cudaMemcpyAsync(dst.data(), src, dst.bytes(), cudaMemcpyHostToDevice, stream_), op, "cudaMemcpyAsync");
    sync(op);
  }

  void copy_to_host(void* dst, const Tensor& src) override {
    if (!src) return;
    const char* op = "copy_to_host";
    kChecks.copy_to_host(dst, src);
    const OpTiming timing = enter(op);
    check_cuda(cudaMemcpyAsync(dst, src.data(), src.bytes(), cudaMemcpyDeviceToHost, stream_), op, "cudaMemcpyAsync");
    sync(op);
  }

  void copy(const Tensor& dst, const Tensor& src) override {
    const char* op = "copy";
    kChecks.copy(dst, src);
    if (dst.bytes() == 0) return;
    if (dst.data() == src.data()) return;
    const OpTiming timing = enter(op);
    const auto* d = static_cast<const char*>(dst.data());
    const auto* s = static_cast<const char*>(src.data());
    const bool overlap = d < s + src.bytes() && s < d + dst.bytes();
    if (overlap) {
      // cudaMemcpy does not allow overlap (the cpu backend's memmove does): go through scratch.
      Scratch tmp(pool_, src.bytes(), op);
      check_cuda(cudaMemcpyAsync(tmp.as<void>(), src.data(), src.bytes(), cudaMemcpyDeviceToDevice, stream_), op,
                 "cudaMemcpyAsync");
      check_cuda(cudaMemcpyAsync(dst.data(), tmp.as<void>(), dst.bytes(), cudaMemcpyDeviceToDevice, stream_), op,
                 "cudaMemcpyAsync");
      return;
    }
    check_cuda(cudaMemcpyAsync(dst.data(), src.data(), dst.bytes(), cudaMemcpyDeviceToDevice, stream_), op,
               "cudaMemcpyAsync");
  }

  void convert(const Tensor& dst, const Tensor& src) override {
    if (dst && src && dst.dtype() == src.dtype()) return copy(dst, src);
    const OpTiming timing = enter("convert");
    if ((dst && dst.dtype() == DType::f64) || (src && src.dtype() == DType::f64)) return convert_f64(dst, src);
    bf16_->convert(dst, src);
  }

  void synchronize() override {
    const OpTiming timing = enter("synchronize");
    sync("synchronize");
  }

  // Page-locked host memory: device-to-host copies into it run at full bandwidth (no
  // staging through a driver bounce buffer). Used for checkpoint snapshots.
  void* allocate_host(std::size_t bytes) override {
    void* p = nullptr;
    check_cuda(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault), "allocate_host", "cudaHostAlloc");
    return p;
  }
  void free_host(void* p) noexcept override {
    if (p) cudaFreeHost(p);
  }

  void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor& wpe, int B,
                         int T, int C) override {
    const char* op = "embedding_forward";
    if (out && out.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->embedding_forward(out, tokens, wte, wpe, B, T, C);
    }
    const auto vocab = kChecks.embedding_forward(out, tokens, wte, wpe, B, T, C);
    const OpTiming timing = enter(op);
    // Token ids live on the device: they are checked there, and reported at the next sync.
    check_cuda(gpu::embedding_forward(f32(out), i32(tokens), f32(wte), f32(wpe), B, T, C, vocab, error_word(),
                                      stream_),
               op, "kernel launch");
  }

  void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout, const Tensor& tokens, int B,
                          int T, int C) override {
    const char* op = "embedding_backward";
    if (dout && dout.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->embedding_backward(dwte, dwpe, dout, tokens, B, T, C);
    }
    const auto vocab = kChecks.embedding_backward(dwte, dwpe, dout, tokens, B, T, C);
    const OpTiming timing = enter(op);
    const std::size_t bytes = gpu::embedding_backward_scratch_bytes(static_cast<std::int64_t>(B) * T);
    Scratch scratch(pool_, bytes, op);
    check_cuda(gpu::embedding_backward(f32(dwte), f32(dwpe), f32(dout), i32(tokens), B, T, C, vocab,
                                       scratch.as<void>(), bytes, error_word(), stream_),
               op, "kernels (sort and accumulate)");
  }

  void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                         const Tensor& weight, const Tensor& bias, int N, int C) override {
    const char* op = "layernorm_forward";
    if (inp && inp.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
    }
    kChecks.layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
    const OpTiming timing = enter(op);
    check_cuda(gpu::layernorm_forward(f32(out), f32(mean), f32(rstd), f32(inp), f32(weight), f32(bias), N, C,
                                      stream_),
               op, "kernel launch");
  }

  void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                          const Tensor& inp, const Tensor& weight, const Tensor& mean, const Tensor& rstd, int N,
                          int C) override {
    const char* op = "layernorm_backward";
    if (dout && dout.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    }
    kChecks.layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    check_chunks(op, N);
    const OpTiming timing = enter(op);
    Scratch scratch(pool_, 2 * static_cast<std::size_t>(gpu::column_chunks(N)) * C * sizeof(float), op);
    check_cuda(gpu::layernorm_backward(f32(dinp), f32(dweight), f32(dbias), f32(dout), f32(inp), f32(weight),
                                       f32(mean), f32(rstd), N, C, scratch.as<float>(), stream_),
               op, "kernel launch");
  }

  // cuBLAS is column-major, and a row-major X[r, c] (ld c) is the column-major X^T. So
  // out = inp @ W^T is computed as out^T[OC, N] = W[OC, C] inp^T[C, N]: gemm(T, N) with the
  // row-major weight (ld C) transposed and the row-major input (ld C) as is.
  void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor& bias, int N, int C,
                      int OC) override {
    const char* op = "matmul_forward";
    if (inp && inp.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->matmul_forward(out, inp, weight, bias, N, C, OC);
    }
    kChecks.matmul_forward(out, inp, weight, bias, N, C, OC);
    const OpTiming timing = enter(op);
    gemm(op, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, 1.0f, f32(weight), C, f32(inp), C, 0.0f, f32(out), OC);
    if (bias) check_cuda(gpu::add_bias_rows(f32(out), f32(bias), N, OC, stream_), op, "bias kernel launch");
  }

  void matmul_residual_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor& bias,
                               const Tensor& residual, int N, int C, int OC) override {
    if (inp && inp.dtype() == DType::bf16 && gpu::Bf16Ops::fuses_residual(out, bias, residual)) {
      const OpTiming timing = enter("matmul_residual_forward");
      return bf16_->matmul_residual_forward(out, inp, weight, bias, residual, N, C, OC);
    }
    Backend::matmul_residual_forward(out, inp, weight, bias, residual, N, C, OC);
  }

  void matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                       const Tensor& inp, const Tensor& weight, int N, int C, int OC) override {
    const char* op = "matmul_backward";
    if (dout && dout.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    }
    kChecks.matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    if (dbias) check_chunks(op, N);
    const OpTiming timing = enter(op);
    // dinp[N, C] = dout[N, OC] @ W[OC, C]  ->  dinp^T = W^T dout^T.
    if (dinp) gemm(op, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, 1.0f, f32(weight), C, f32(dout), OC, 0.0f, f32(dinp), C);
    // dweight[OC, C] += dout^T @ inp  ->  dweight^T += inp^T dout.
    gemm(op, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, 1.0f, f32(inp), C, f32(dout), OC, 1.0f, f32(dweight), C);
    if (dbias) {
      const std::int64_t chunks = gpu::column_chunks(N);
      Scratch scratch(pool_, static_cast<std::size_t>(chunks) * OC * sizeof(float), op);
      check_cuda(gpu::column_partials(scratch.as<float>(), f32(dout), N, OC, stream_), op, "bias kernel launch");
      check_cuda(gpu::column_finalize(f32(dbias), scratch.as<float>(), chunks, OC, stream_), op,
                 "bias kernel launch");
    }
  }

  // Fused flash attention (kernels/flash_attention.cu): f32 or bf16 qkv/out/dout/dqkv, f32
  // stats; nothing T x T is stored. Backward takes a B*NH*T scratch for rowsum(dO * O).
  void attention_forward(const Tensor& out, const Tensor& stats, const Tensor& qkv, int B, int T, int C,
                         int NH) override {
    const char* op = "attention_forward";
    const DType dt = attention_dtype(qkv);
    kChecks.attention_forward(out, stats, qkv, B, T, C, NH, dt);
    check_flash_attention(op, qkv, dt, B, C, NH);
    check_aligned(op, "out", out);
    const OpTiming timing = enter(op);
    check_cuda(gpu::flash_attention_forward(out.data(), f32(stats), qkv.data(), dt == DType::bf16, B, T, C, NH,
                                            stream_),
               op, "kernel launch");
  }

  void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                          const Tensor& stats, int B, int T, int C, int NH) override {
    const char* op = "attention_backward";
    const DType dt = attention_dtype(qkv);
    kChecks.attention_backward(dqkv, dout, qkv, out, stats, B, T, C, NH, dt);
    check_flash_attention(op, qkv, dt, B, C, NH);
    check_aligned(op, "dqkv", dqkv);
    check_aligned(op, "dout", dout);
    const OpTiming timing = enter(op);
    Scratch delta(pool_, static_cast<std::size_t>(B) * NH * T * sizeof(float), op);
    check_cuda(gpu::flash_attention_backward(dqkv.data(), delta.as<float>(), dout.data(), qkv.data(), out.data(),
                                             f32(stats), dt == DType::bf16, B, T, C, NH, stream_),
               op, "kernel launch");
  }

  // bf16: the GELU in cuBLASLt's epilogue; f32: the Backend default (the separate ops).
  void matmul_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& inp, const Tensor& weight,
                           const Tensor& bias, int N, int C, int OC) override {
    if (inp && inp.dtype() == DType::bf16) {
      const OpTiming timing = enter("matmul_gelu_forward");
      return bf16_->matmul_gelu_forward(out, pre, inp, weight, bias, N, C, OC);
    }
    Backend::matmul_gelu_forward(out, pre, inp, weight, bias, N, C, OC);
  }

  void matmul_gelu_backward(const Tensor& dpre, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                            const Tensor& inp, const Tensor& pre, const Tensor& weight, int N, int C,
                            int OC) override {
    if (dout && dout.dtype() == DType::bf16) {
      const OpTiming timing = enter("matmul_gelu_backward");
      return bf16_->matmul_gelu_backward(dpre, dweight, dbias, dout, inp, pre, weight, N, C, OC);
    }
    Backend::matmul_gelu_backward(dpre, dweight, dbias, dout, inp, pre, weight, N, C, OC);
  }

  void gelu_forward(const Tensor& out, const Tensor& inp, std::int64_t N) override {
    const char* op = "gelu_forward";
    if (inp && inp.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->gelu_forward(out, inp, N);
    }
    kChecks.gelu_forward(out, inp, N);
    const OpTiming timing = enter(op);
    check_cuda(gpu::gelu_forward(f32(out), f32(inp), N, stream_), op, "kernel launch");
  }

  void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout, std::int64_t N) override {
    const char* op = "gelu_backward";
    if (inp && inp.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->gelu_backward(dinp, inp, dout, N);
    }
    kChecks.gelu_backward(dinp, inp, dout, N);
    const OpTiming timing = enter(op);
    check_cuda(gpu::gelu_backward(f32(dinp), f32(inp), f32(dout), N, stream_), op, "kernel launch");
  }

  void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b, std::int64_t N) override {
    const char* op = "residual_forward";
    if (a && a.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->residual_forward(out, a, b, N);
    }
    kChecks.residual_forward(out, a, b, N);
    const OpTiming timing = enter(op);
    check_cuda(gpu::residual_forward(f32(out), f32(a), f32(b), N, stream_), op, "kernel launch");
  }

  void dropout_forward(const Tensor& out, const Tensor& inp, float p, RngKey key, std::int64_t N) override {
    dropout("dropout_forward", "out", out, "inp", inp, p, key, N);
  }

  void dropout_backward(const Tensor& dinp, const Tensor& dout, float p, RngKey key, std::int64_t N) override {
    dropout("dropout_backward", "dinp", dinp, "dout", dout, p, key, N);
  }

  void axpby(const Tensor& y, float a, const Tensor& x, float b, std::int64_t N) override {
    const char* op = "axpby";
    kChecks.axpby(y, x, N);
    const OpTiming timing = enter(op);
    check_cuda(gpu::axpby(f32(y), a, f32(x), b, N, stream_), op, "kernel launch");
  }

  double sum_squares(const Tensor& x, std::int64_t N) override {
    const char* op = "sum_squares";
    kChecks.sum_squares(x, N);
    if (gpu::sum_squares_partials(N) > 0x7fffffff) kChecks.fail(op, "N is too large for one grid");
    const OpTiming timing = enter(op);
    Scratch scratch(pool_, static_cast<std::size_t>(gpu::sum_squares_partials(N) + 1) * sizeof(double), op);
    check_cuda(gpu::sum_squares(scratch.as<double>(), f32(x), N, stream_), op, "kernel launch");
    double total = 0.0;
    check_cuda(cudaMemcpyAsync(&total, scratch.as<double>(), sizeof(double), cudaMemcpyDeviceToHost, stream_), op,
               "cudaMemcpyAsync");
    sync(op);
    return total;
  }

  // One kernel over the values, no host read: the step's loss stays on the device.
  void accumulate_sum(const Tensor& acc, const Tensor& x, std::int64_t N, double scale) override {
    const char* op = "accumulate_sum";
    kChecks.dims(op, {{"N", N}});
    kChecks.numel(op, "acc", acc, 1, "1", DType::f64);
    kChecks.numel(op, "x", x, N, "N", x && x.dtype() == DType::f64 ? DType::f64 : DType::f32);
    const OpTiming timing = enter(op);
    const bool wide = x.dtype() == DType::f64;
    check_cuda(gpu::accumulate_sum(acc.data_as<double>(), wide ? nullptr : f32(x), wide ? x.data_as<double>() : nullptr,
                                   N, scale, stream_),
               op, "kernel launch");
  }

  // Every term's chunks in one launch per kSquaresBatchTerms terms, then the terms added in
  // order on the device: no host read (the engine reads the norm with the step's loss).
  void sum_squares_many(const Tensor& out, const std::vector<SquaresTerm>& terms) override {
    const char* op = "sum_squares_many";
    if (!out || (out.dtype() != DType::f64 && out.dtype() != DType::f32)) kChecks.fail(op, "out must be f64 or f32");
    kChecks.numel(op, "out", out, 1, "1", out.dtype());
    std::int64_t most_chunks = 1;
    for (std::size_t at = 0; at < terms.size(); at += gpu::kSquaresBatchTerms) {
      std::int64_t chunks = 0;
      for (std::size_t i = at; i < std::min(terms.size(), at + gpu::kSquaresBatchTerms); ++i) {
        if (terms[i].x.numel() > 0) kChecks.tensor(op, "a term's x", terms[i].x, DType::f32);
        chunks += gpu::sum_squares_partials(terms[i].x.numel());
      }
      if (chunks > 0x7fffffff) kChecks.fail(op, "the terms are too large for one grid");
      most_chunks = std::max(most_chunks, chunks);
    }
    const OpTiming timing = enter(op);
    Scratch values(pool_, std::max<std::size_t>(terms.size(), 1) * sizeof(double), op);
    Scratch partials(pool_, static_cast<std::size_t>(most_chunks) * sizeof(double), op);
    for (std::size_t at = 0; at < terms.size(); at += gpu::kSquaresBatchTerms) {
      gpu::SquaresBatch batch{};
      batch.count = static_cast<int>(std::min<std::size_t>(gpu::kSquaresBatchTerms, terms.size() - at));
      for (int i = 0; i < batch.count; ++i) {
        const auto& term = terms[at + static_cast<std::size_t>(i)];
        batch.x[i] = term.x.numel() > 0 ? f32(term.x) : nullptr;
        batch.n[i] = term.x.numel();
        batch.scale[i] = term.scale;
        batch.first_chunk[i + 1] = batch.first_chunk[i] + gpu::sum_squares_partials(term.x.numel());
      }
      check_cuda(gpu::sum_squares_batch(values.as<double>() + at, partials.as<double>(), batch, stream_), op,
                 "kernel launch");
    }
    const bool wide = out.dtype() == DType::f64;
    check_cuda(gpu::sum_in_order(wide ? out.data_as<double>() : nullptr, wide ? nullptr : f32(out), values.as<double>(),
                                 static_cast<int>(terms.size()), stream_),
               op, "kernel launch");
  }

  void crossentropy_forward_backward(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                                     const Tensor& targets, float dloss, int N, int V) override {
    const char* op = "crossentropy_forward_backward";
    if (logits && logits.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->crossentropy_forward_backward(losses, dlogits, logits, targets, dloss, N, V);
    }
    kChecks.crossentropy_forward_backward(losses, dlogits, logits, targets, N, V);
    const OpTiming timing = enter(op);
    check_cuda(gpu::crossentropy_forward_backward(f32(losses), f32(dlogits), f32(logits), i32(targets), dloss, N, V,
                                                  error_word(), stream_),
               op, "kernel launch");
  }

  void crossentropy_shard_stats(const Tensor& stats, const Tensor& logits, const Tensor& targets, int first, int N,
                                int V) override {
    const char* op = "crossentropy_shard_stats";
    kChecks.dims(op, {{"N", N}, {"V", V}});
    const DType dt = logits ? logits.dtype() : DType::f32;
    if (dt != DType::f32 && dt != DType::bf16) kChecks.fail(op, "logits must be f32 or bf16");
    kChecks.numel(op, "stats", stats, 3LL * N, "N*3");
    kChecks.numel(op, "logits", logits, static_cast<std::int64_t>(N) * V, "N*V", dt);
    kChecks.numel(op, "targets", targets, N, "N", DType::i32);
    const OpTiming timing = enter(op);
    check_cuda(gpu::crossentropy_shard_stats(f32(stats), logits.data(), dt == DType::bf16, i32(targets), first, N, V,
                                             stream_),
               op, "kernel launch");
  }

  void crossentropy_shard_finish(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                                 const Tensor& targets, const Tensor& all_stats, int shards, int first, float dloss,
                                 int N, int V) override {
    const char* op = "crossentropy_shard_finish";
    kChecks.dims(op, {{"N", N}, {"V", V}, {"shards", shards}});
    const DType dt = logits ? logits.dtype() : DType::f32;
    if (dt != DType::f32 && dt != DType::bf16) kChecks.fail(op, "logits must be f32 or bf16");
    const std::int64_t NV = static_cast<std::int64_t>(N) * V;
    kChecks.numel(op, "losses", losses, N, "N");
    if (dlogits) kChecks.numel(op, "dlogits", dlogits, NV, "N*V", dt);
    kChecks.numel(op, "logits", logits, NV, "N*V", dt);
    kChecks.numel(op, "targets", targets, N, "N", DType::i32);
    kChecks.numel(op, "all_stats", all_stats, 3LL * shards * N, "shards*N*3");
    const OpTiming timing = enter(op);
    check_cuda(gpu::crossentropy_shard_finish(f32(losses), dlogits ? dlogits.data() : nullptr, logits.data(),
                                              dt == DType::bf16, i32(targets), f32(all_stats), shards, first, dloss,
                                              N, V, stream_),
               op, "kernel launch");
  }

  // One launch over every tensor: each cut into chunks of gpu::kAdamWChunk, one block each.
  void adamw_update_many(const std::vector<AdamWTensors>& tensors, float lr, float beta1, float beta2, float eps,
                         std::int64_t t) override {
    const char* op = "adamw_update_many";
    kChecks.dims(op, {{"t", t}});
    adamw_host_.clear();
    for (const auto& x : tensors) {
      const std::int64_t N = x.param.numel();
      kChecks.adamw_tensors(op, x.param, x.grad, x.m, x.v, N);
      if (x.compute) kChecks.numel(op, "compute", x.compute, N, "N", DType::bf16);
      auto* compute = static_cast<std::uint16_t*>(x.compute ? x.compute.data() : nullptr);
      for (std::int64_t at = 0; at < N; at += gpu::kAdamWChunk) {
        adamw_host_.push_back({f32(x.param) + at, f32(x.grad) + at, f32(x.m) + at, f32(x.v) + at,
                               std::min(gpu::kAdamWChunk, N - at), x.weight_decay, compute ? compute + at : nullptr});
      }
    }
    if (adamw_host_.empty()) return;
    if (adamw_host_.size() > static_cast<std::size_t>(0x7fffffff)) kChecks.fail(op, "too many chunks");
    const OpTiming timing = enter(op);
    const std::size_t bytes = adamw_host_.size() * sizeof(gpu::AdamWChunk);
    const bool same = adamw_uploaded_.size() == adamw_host_.size() &&
                      std::memcmp(adamw_uploaded_.data(), adamw_host_.data(), bytes) == 0;
    if (!same) {
      if (!adamw_chunks_ || adamw_chunks_.bytes() < bytes) {
        adamw_chunks_ = allocate({static_cast<std::int64_t>((bytes + 3) / 4)}, DType::i32);
      }
      adamw_uploaded_ = adamw_host_;
      // From pageable memory: staged before the call returns, so adamw_uploaded_ may change later.
      check_cuda(cudaMemcpyAsync(adamw_chunks_.data(), adamw_uploaded_.data(), bytes, cudaMemcpyHostToDevice, stream_),
                 op, "cudaMemcpyAsync");
    }
    const float c1 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t)));
    const float c2 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t)));
    check_cuda(gpu::adamw_update_chunks(static_cast<const gpu::AdamWChunk*>(adamw_chunks_.data()),
                                        static_cast<int>(adamw_host_.size()), lr, beta1, beta2, eps, c1, c2, stream_),
               op, "kernel launch");
  }

  void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, std::int64_t N,
                    float lr, float beta1, float beta2, float eps, float weight_decay, std::int64_t t) override {
    const char* op = "adamw_update";
    kChecks.adamw_update(param, grad, m, v, N, t);
    const OpTiming timing = enter(op);
    // As the cpu backend: the corrections in double, since b^t loses digits in float.
    const float c1 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t)));
    const float c2 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t)));
    check_cuda(gpu::adamw_update(f32(param), f32(grad), f32(m), f32(v), N, lr, beta1, beta2, eps, weight_decay, c1,
                                 c2, stream_),
               op, "kernel launch");
  }

 private:
  // Makes this backend's device current on the calling thread (cheap after the first call).
  // The returned guard times the op when profiling (allocation enqueues nothing: untimed).
  [[nodiscard]] OpTiming enter(const char* op) {
    thread_local int current = -1;
    if (current != device_) {
      check_cuda(cudaSetDevice(device_), op, "cudaSetDevice");
      current = device_;
    }
    return OpTiming(std::string_view(op) == "allocate" ? nullptr : profiler_.get(), op, stream_);
  }

  unsigned* error_word() const { return error_word_->as<unsigned>(); }

  // f64 <-> f32, for the engine's loss and norm scalars (convert's other pairs go to Bf16Ops).
  void convert_f64(const Tensor& dst, const Tensor& src) {
    const char* op = "convert";
    const bool narrow = dst && dst.dtype() == DType::f32;
    kChecks.convert(dst, narrow ? DType::f32 : DType::f64, src, narrow ? DType::f64 : DType::f32);
    if (dst.numel() == 0) return;
    check_cuda(narrow ? gpu::convert_f64_to_f32(f32(dst), src.data_as<double>(), dst.numel(), stream_)
                      : gpu::convert_f32_to_f64(dst.data_as<double>(), f32(src), dst.numel(), stream_),
               op, "kernel launch");
  }

  // Waits for the stream, then reports bad data the kernels found (token or target ids).
  void sync(const char* op) {
    check_cuda(cudaStreamSynchronize(stream_), op, "cudaStreamSynchronize");
    if (profiler_) profiler_->synced(op);
    unsigned word = 0;
    check_cuda(cudaMemcpyAsync(&word, error_word(), sizeof(word), cudaMemcpyDeviceToHost, stream_), op,
               "cudaMemcpyAsync");
    check_cuda(cudaStreamSynchronize(stream_), op, "cudaStreamSynchronize");
    if (word == 0) return;
    check_cuda(cudaMemsetAsync(error_word(), 0, sizeof(unsigned), stream_), op, "cudaMemsetAsync");
    std::string what;
    if (word & kBadTokenForward) what += "embedding_forward: a token was outside [0, vocab); ";
    if (word & kBadTokenBackward) what += "embedding_backward: a token was outside [0, vocab); ";
    if (word & kBadTarget) what += "crossentropy_forward_backward: a target was not below V; ";
    throw std::invalid_argument("cuda backend: " + what + "found on the device, reported at " + op);
  }

  void gemm(const char* op, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
            const float* A, std::int64_t lda, const float* Bm, std::int64_t ldb, float beta, float* Cm,
            std::int64_t ldc) {
    check_cublas(cublasSgemm(cublas_, ta, tb, m, n, k, &alpha, A, static_cast<int>(lda), Bm, static_cast<int>(ldb),
                             &beta, Cm, static_cast<int>(ldc)),
                 op, "cublasSgemm");
  }

  // The dtype every activation of an attention op must have: qkv's (f32 or bf16).
  static DType attention_dtype(const Tensor& qkv) {
    return qkv && qkv.dtype() == DType::bf16 ? DType::bf16 : DType::f32;
  }

  // What the flash kernels add to the shared checks (after them: dims positive, C % NH == 0,
  // qkv of the right size): the grid limit, the head sizes they handle, qkv's alignment.
  static void check_flash_attention(const char* op, const Tensor& qkv, DType dt, int B, int C, int NH) {
    if (B * static_cast<std::int64_t>(NH) > 65535) {
      kChecks.fail(op, "B*NH = " + std::to_string(B * static_cast<std::int64_t>(NH)) + " is more than one grid handles (65535)");
    }
    if (const char* why = gpu::flash_attention_refusal(C / NH, dt == DType::bf16)) {
      kChecks.fail(op, std::string(why) + "; got C = " + std::to_string(C) + ", NH = " + std::to_string(NH) +
                           " (head size " + std::to_string(C / NH) + ")");
    }
    check_aligned(op, "qkv", qkv);
  }

  // The bf16 kernels copy 16-byte pieces; pool blocks are 512-byte aligned, views may not be.
  static void check_aligned(const char* op, const char* name, const Tensor& t) {
    if (reinterpret_cast<std::uintptr_t>(t.data()) % 16 != 0) {
      kChecks.fail(op, std::string(name) + " is not 16-byte aligned (a view at an odd offset?)");
    }
  }

  static void check_chunks(const char* op, std::int64_t N) {
    if (gpu::column_chunks(N) > 65535) kChecks.fail(op, "N = " + std::to_string(N) + " rows is more than one grid handles");
  }

  void dropout(const char* op, const char* out_name, const Tensor& out, const char* in_name, const Tensor& inp,
               float p, RngKey key, std::int64_t N) {
    if (out && out.dtype() == DType::bf16) {
      const OpTiming timing = enter(op);
      return bf16_->dropout(op, out_name, out, in_name, inp, p, key, N);
    }
    kChecks.dropout(op, out_name, out, in_name, inp, p, N);
    const OpTiming timing = enter(op);
    if (p == 0.0f) {
      if (out.data() != inp.data()) {
        check_cuda(cudaMemcpyAsync(out.data(), inp.data(), out.bytes(), cudaMemcpyDeviceToDevice, stream_), op,
                   "cudaMemcpyAsync");
      }
      return;
    }
    const float scale = 1.0f / (1.0f - p);
    check_cuda(gpu::dropout_apply(f32(out), f32(inp), p, scale, key, N, stream_), op, "kernel launch");
  }

  int device_;
  bool poison_ = false;  // backend.poison: every allocation filled with all-ones bytes
  std::shared_ptr<DevicePool> pool_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<Scratch> workspace_;
  std::unique_ptr<Scratch> error_word_;
  std::unique_ptr<LtMatmul> lt_;
  std::unique_ptr<Bf16Ops> bf16_;
  // adamw_update_many's chunk table: rebuilt on the host each step, uploaded only when it
  // changed (the parameter, gradient and state buffers stay put from step to step).
  std::vector<gpu::AdamWChunk> adamw_host_, adamw_uploaded_;
  Tensor adamw_chunks_;
  std::unique_ptr<OpProfiler> profiler_;
  gpu::UploadStaging upload_staging_;  // copy_from_host of small buffers without a host wait
};

int choose_device(std::int64_t requested) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    const std::string why = status != cudaSuccess
                                ? std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status)
                                : std::string("0 devices");
    throw std::runtime_error("backend cuda: no CUDA device is visible (cudaGetDeviceCount: " + why +
                             "); use backend: cpu");
  }
  std::int64_t device = requested;
  if (device < 0) {
    // One process per GPU under the launcher: its local rank picks the device.
    const char* rank = std::getenv("TRAINER_LOCAL_RANK");
    device = rank && *rank ? std::strtoll(rank, nullptr, 10) : 0;
    if (device < 0) device = 0;
  }
  if (device >= count) {
    throw std::runtime_error("backend cuda: device " + std::to_string(device) + " requested, but only " +
                             std::to_string(count) + " CUDA device(s) are visible");
  }
  return static_cast<int>(device);
}

std::unique_ptr<Plugin> create(const PluginContext& context) {
  return std::make_unique<CudaBackend>(choose_device(context.config.get_int("device")),
                                       context.config.get_bool("deterministic"), context.config.get_bool("profile"),
                                       context.config.get_bool("poison"));
}

std::vector<KeySpec> keys() {
  return {KeySpec{.name = "device",
                  .type = KeyType::integer,
                  .default_value = "-1",
                  .doc = "CUDA device index; -1 takes TRAINER_LOCAL_RANK if set, else 0",
                  .required = false,
                  .min = -1.0,
                  .max = std::nullopt,
                  .choices = {}},
          KeySpec{.name = "deterministic",
                  .type = KeyType::boolean,
                  .default_value = "false",
                  .doc = "bf16 matrix products only from cuBLASLt algorithms without split-K, so a result never "
                         "depends on how the library splits a product (about 8% slower on GPT-2 124M); runs "
                         "repeat bit for bit either way on one GPU and library version",
                  .required = false,
                  .min = std::nullopt,
                  .max = std::nullopt,
                  .choices = {}},
          KeySpec{.name = "profile",
                  .type = KeyType::boolean,
                  .default_value = "false",
                  .doc = "time every op with CUDA events and print a per-op table of GPU time at exit "
                         "(adds a little host overhead per op)",
                  .required = false,
                  .min = std::nullopt,
                  .max = std::nullopt,
                  .choices = {}},
          KeySpec{.name = "poison",
                  .type = KeyType::boolean,
                  .default_value = "false",
                  .doc = "debugging: fill every allocation with all-ones bytes (NaN in f32/bf16) before use, so a "
                         "kernel that reads memory nobody wrote turns the loss into NaN (one memset per allocation)",
                  .required = false,
                  .min = std::nullopt,
                  .max = std::nullopt,
                  .choices = {}}};
}

const PluginDescriptor kDescriptor{kAbiVersion, PluginKind::backend, "cuda", "0.1.0",
                                   "f32 or bf16 (mixed precision) tensors in CUDA device memory; cuBLAS/cuBLASLt matrix products", &create,
                                   &keys};

}  // namespace
}  // namespace trainer::gpu

TRAINER_PLUGIN(trainer::gpu::kDescriptor)
