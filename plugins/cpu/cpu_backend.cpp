// The cpu backend: f32 tensors in 64-byte aligned host memory. Each op checks its tensors
// (present, on the cpu, of the right dtype and element count) and dimensions, throwing
// std::invalid_argument naming the op, then dispatches to a kernel in kernels/.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/adamw.hpp"
#include "kernels/attention.hpp"
#include "kernels/crossentropy.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/embedding.hpp"
#include "kernels/gelu.hpp"
#include "host_pool.hpp"
#include "kernels/layernorm.hpp"
#include "kernels/matmul.hpp"
#include "trainer/backend.hpp"
#include "trainer/bf16.hpp"
#include "trainer/op_checks.hpp"

namespace trainer::cpu {
namespace {

constexpr OpChecks kChecks{"cpu backend", Device::cpu, "host memory"};

constexpr std::size_t kAlignment = 64;

void check_tokens(const char* op, const Tensor& tokens, std::int64_t rows, std::int64_t vocab) {
  const auto* tok = tokens.data_as<const std::int32_t>();
  for (std::int64_t i = 0; i < rows; ++i) {
    if (tok[i] < 0 || tok[i] >= vocab) {
      kChecks.fail(op, "token " + std::to_string(tok[i]) + " at position " + std::to_string(i) +
                   " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
  }
}

float* f32(const Tensor& t) { return t ? t.data_as<float>() : nullptr; }

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }
  const char* name() const override { return "cpu"; }

  Tensor allocate(const Shape& shape, DType dtype) override {
    for (auto d : shape) {
      if (d < 0) throw std::invalid_argument("cpu backend: allocate: negative dimension in " + shape_string(shape));
    }
    const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
    // Even an empty tensor gets a block, so that its address is not null.
    std::shared_ptr<void> storage = pool_->allocate(bytes);
    void* p = storage.get();
    return Tensor(std::move(storage), p, shape, dtype, Device::cpu);
  }

  void fill_zero(const Tensor& t) override {
    if (!t) return;
    kChecks.tensor("fill_zero", "t", t, t.dtype());
    std::memset(t.data(), 0, t.bytes());
  }
  void copy_from_host(const Tensor& dst, const void* src) override {
    if (!dst) return;
    kChecks.copy_from_host(dst, src);
    std::memcpy(dst.data(), src, dst.bytes());
  }
  void copy_to_host(void* dst, const Tensor& src) override {
    if (!src) return;
    kChecks.copy_to_host(dst, src);
    std::memcpy(dst, src.data(), src.bytes());
  }
  void copy(const Tensor& dst, const Tensor& src) override {
    kChecks.copy(dst, src);
    if (dst.bytes() == 0) return;
    std::memmove(dst.data(), src.data(), dst.bytes());
  }
  // f32 <-> bf16 (the cpu ops themselves compute in f32 only; recipes with precision bf16
  // are refused for this backend). Tests use it to make bf16 inputs for other backends.
  // f32 <-> f64 for the engine's loss and norm scalars.
  void convert(const Tensor& dst, const Tensor& src) override {
    const char* op = "convert";
    kChecks.convert(dst, dst.dtype(), src, src.dtype());
    const auto n = static_cast<std::size_t>(src.numel());
    if (dst.dtype() == src.dtype()) {
      std::memmove(dst.data(), src.data(), dst.bytes());
    } else if (dst.dtype() == DType::bf16 && src.dtype() == DType::f32) {
      for (std::size_t i = 0; i < n; ++i) dst.data_as<std::uint16_t>()[i] = f32_to_bf16(src.data_as<float>()[i]);
    } else if (dst.dtype() == DType::f32 && src.dtype() == DType::bf16) {
      for (std::size_t i = 0; i < n; ++i) dst.data_as<float>()[i] = bf16_to_f32(src.data_as<std::uint16_t>()[i]);
    } else if (dst.dtype() == DType::f32 && src.dtype() == DType::f64) {  // the engine's device scalars
      for (std::size_t i = 0; i < n; ++i) dst.data_as<float>()[i] = static_cast<float>(src.data_as<double>()[i]);
    } else if (dst.dtype() == DType::f64 && src.dtype() == DType::f32) {
      for (std::size_t i = 0; i < n; ++i) dst.data_as<double>()[i] = src.data_as<float>()[i];
    } else {
      kChecks.fail(op, std::string("cannot convert ") + dtype_name(src.dtype()) + " to " + dtype_name(dst.dtype()));
    }
  }

  void synchronize() override {}

  void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte,
                         const Tensor& wpe, int B, int T, int C) override {
    const auto vocab = kChecks.embedding_forward(out, tokens, wte, wpe, B, T, C);
    check_tokens("embedding_forward", tokens, static_cast<std::int64_t>(B) * T, vocab);
    cpu::embedding_forward(f32(out), tokens.data_as<const std::int32_t>(), f32(wte), f32(wpe), B, T, C);
  }

  void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout,
                          const Tensor& tokens, int B, int T, int C) override {
    const auto vocab = kChecks.embedding_backward(dwte, dwpe, dout, tokens, B, T, C);
    check_tokens("embedding_backward", tokens, static_cast<std::int64_t>(B) * T, vocab);
    cpu::embedding_backward(f32(dwte), f32(dwpe), f32(dout), tokens.data_as<const std::int32_t>(), B, T, C);
  }

  void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                         const Tensor& inp, const Tensor& weight, const Tensor& bias, int N,
                         int C) override {
    kChecks.layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
    cpu::layernorm_forward(f32(out), f32(mean), f32(rstd), f32(inp), f32(weight), f32(bias), N, C);
  }

  void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                          const Tensor& dout, const Tensor& inp, const Tensor& weight,
                          const Tensor& mean, const Tensor& rstd, int N, int C) override {
    kChecks.layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    cpu::layernorm_backward(f32(dinp), f32(dweight), f32(dbias), f32(dout), f32(inp), f32(weight),
                            f32(mean), f32(rstd), N, C);
  }

  void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                      const Tensor& bias, int N, int C, int OC) override {
    kChecks.matmul_forward(out, inp, weight, bias, N, C, OC);
    cpu::matmul_forward(f32(out), f32(inp), f32(weight), f32(bias), N, C, OC);
  }

  void matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                       const Tensor& dout, const Tensor& inp, const Tensor& weight, int N, int C,
                       int OC) override {
    kChecks.matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    cpu::matmul_backward(f32(dinp), f32(dweight), f32(dbias), f32(dout), f32(inp), f32(weight), N, C, OC);
  }

  void attention_forward(const Tensor& out, const Tensor& stats, const Tensor& qkv, int B, int T,
                         int C, int NH) override {
    kChecks.attention_forward(out, stats, qkv, B, T, C, NH);
    cpu::attention_forward(f32(out), f32(stats), f32(qkv), B, T, C, NH);
  }

  void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                          const Tensor& out, const Tensor& stats, int B, int T, int C,
                          int NH) override {
    kChecks.attention_backward(dqkv, dout, qkv, out, stats, B, T, C, NH);
    cpu::attention_backward(f32(dqkv), f32(dout), f32(qkv), f32(out), f32(stats), B, T, C, NH);
  }

  void gelu_forward(const Tensor& out, const Tensor& inp, std::int64_t N) override {
    kChecks.gelu_forward(out, inp, N);
    cpu::gelu_forward(f32(out), f32(inp), N);
  }

  void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout,
                     std::int64_t N) override {
    kChecks.gelu_backward(dinp, inp, dout, N);
    cpu::gelu_backward(f32(dinp), f32(inp), f32(dout), N);
  }

  void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b,
                        std::int64_t N) override {
    kChecks.residual_forward(out, a, b, N);
    cpu::residual_forward(f32(out), f32(a), f32(b), N);
  }

  void dropout_forward(const Tensor& out, const Tensor& inp, float p, RngKey key,
                       std::int64_t N) override {
    dropout("dropout_forward", "out", out, "inp", inp, p, key, N);
  }

  void dropout_backward(const Tensor& dinp, const Tensor& dout, float p, RngKey key,
                        std::int64_t N) override {
    dropout("dropout_backward", "dinp", dinp, "dout", dout, p, key, N);
  }

  void axpby(const Tensor& y, float a, const Tensor& x, float b, std::int64_t N) override {
    kChecks.axpby(y, x, N);
    cpu::axpby(f32(y), a, f32(x), b, N);
  }

  double sum_squares(const Tensor& x, std::int64_t N) override {
    kChecks.sum_squares(x, N);
    return cpu::sum_squares(f32(x), N);
  }

  void crossentropy_forward_backward(const Tensor& losses, const Tensor& dlogits,
                                     const Tensor& logits, const Tensor& targets, float dloss,
                                     int N, int V) override {
    const char* op = "crossentropy_forward_backward";
    kChecks.crossentropy_forward_backward(losses, dlogits, logits, targets, N, V);
    const auto* tgt = targets.data_as<const std::int32_t>();
    for (int n = 0; n < N; ++n) {
      if (tgt[n] >= V) {
        kChecks.fail(op, "target " + std::to_string(tgt[n]) + " at row " + std::to_string(n) +
                     " is not below V = " + std::to_string(V));
      }
    }
    cpu::crossentropy_forward_backward(f32(losses), f32(dlogits), f32(logits), tgt, dloss, N, V);
  }

  void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                    std::int64_t N, float lr, float beta1, float beta2, float eps,
                    float weight_decay, std::int64_t t) override {
    kChecks.adamw_update(param, grad, m, v, N, t);
    cpu::adamw_update(f32(param), f32(grad), f32(m), f32(v), N, lr, beta1, beta2, eps,
                      weight_decay, t);
  }

 private:
  // Shared with every block it hands out, so that tensors may outlive the backend.
  std::shared_ptr<HostPool> pool_ = std::make_shared<HostPool>(kAlignment);

  static void dropout(const char* op, const char* out_name, const Tensor& out,
                      const char* in_name, const Tensor& inp, float p, RngKey key,
                      std::int64_t N) {
    kChecks.dropout(op, out_name, out, in_name, inp, p, N);
    cpu::dropout_apply(f32(out), f32(inp), p, key, N);
  }
};

std::unique_ptr<Plugin> create(const PluginContext& context) {
  const auto threads = context.config.get_int("threads");
  // Both pools are process-wide; 0 leaves them to OMP_NUM_THREADS / OPENBLAS_NUM_THREADS.
  if (threads > 0) {
    omp_set_num_threads(static_cast<int>(threads));
    openblas_set_num_threads(static_cast<int>(threads));
  }
  return std::make_unique<CpuBackend>();
}

std::vector<KeySpec> keys() {
  return {KeySpec{.name = "threads",
                  .type = KeyType::integer,
                  .default_value = "0",
                  .doc = "threads for OpenMP and OpenBLAS; 0 keeps their defaults",
                  .required = false,
                  .min = 0.0,
                  .max = std::nullopt,
                  .choices = {}}};
}

const PluginDescriptor kDescriptor{kAbiVersion, PluginKind::backend, "cpu", "0.1.0",
                                   "f32 tensors in host memory; OpenBLAS matrix products",
                                   &create, &keys};

}  // namespace
}  // namespace trainer::cpu

TRAINER_PLUGIN(trainer::cpu::kDescriptor)
