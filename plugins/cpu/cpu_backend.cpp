// The cpu backend: f32 tensors in 64-byte aligned host memory. Each op checks its tensors
// (present, on the cpu, of the right dtype and element count) and dimensions, throwing
// std::invalid_argument naming the op, then dispatches to a kernel in kernels/.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
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
#include "kernels/layernorm.hpp"
#include "kernels/matmul.hpp"
#include "trainer/backend.hpp"

namespace trainer::cpu {
namespace {

constexpr std::size_t kAlignment = 64;

[[noreturn]] void fail(const char* op, const std::string& message) {
  throw std::invalid_argument(std::string("cpu backend: ") + op + ": " + message);
}

void check_dims(const char* op, std::initializer_list<std::pair<const char*, std::int64_t>> dims) {
  for (const auto& [name, value] : dims) {
    if (value <= 0) fail(op, std::string(name) + " = " + std::to_string(value) + " must be positive");
  }
}

void check_tensor(const char* op, const char* name, const Tensor& t, DType dtype) {
  if (!t) fail(op, std::string(name) + " is empty");
  if (t.device() != Device::cpu) fail(op, std::string(name) + " is not in host memory");
  if (t.dtype() != dtype) {
    fail(op, std::string(name) + " is " + dtype_name(t.dtype()) + ", expected " + dtype_name(dtype));
  }
}

// `expected` is the element count the dimensions imply; `formula` names it for the message.
void check(const char* op, const char* name, const Tensor& t, std::int64_t expected,
           const char* formula, DType dtype = DType::f32) {
  check_tensor(op, name, t, dtype);
  if (t.numel() != expected) {
    fail(op, std::string(name) + " has shape " + shape_string(t.shape()) + " (" +
                 std::to_string(t.numel()) + " elements), expected " + formula + " = " +
                 std::to_string(expected) + " elements");
  }
}

// An embedding table of any row count: its size must be a whole number of rows of C.
std::int64_t table_rows(const char* op, const char* name, const Tensor& t, int C) {
  check_tensor(op, name, t, DType::f32);
  if (t.numel() == 0 || t.numel() % C != 0) {
    fail(op, std::string(name) + " has shape " + shape_string(t.shape()) +
                 ", not a whole number of rows of C = " + std::to_string(C));
  }
  return t.numel() / C;
}

void check_tokens(const char* op, const Tensor& tokens, std::int64_t rows, std::int64_t vocab) {
  const auto* tok = tokens.data_as<const std::int32_t>();
  for (std::int64_t i = 0; i < rows; ++i) {
    if (tok[i] < 0 || tok[i] >= vocab) {
      fail(op, "token " + std::to_string(tok[i]) + " at position " + std::to_string(i) +
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
    // aligned_alloc needs a size that is a multiple of the alignment; at least one block so
    // that even an empty tensor has a non-null address.
    const std::size_t padded = std::max<std::size_t>(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    void* p = std::aligned_alloc(kAlignment, padded);
    if (!p) throw std::bad_alloc();
    std::shared_ptr<void> storage(p, [](void* q) { std::free(q); });
    return Tensor(std::move(storage), p, shape, dtype, Device::cpu);
  }

  void fill_zero(const Tensor& t) override {
    if (!t) return;
    check_tensor("fill_zero", "t", t, t.dtype());
    std::memset(t.data(), 0, t.bytes());
  }
  void copy_from_host(const Tensor& dst, const void* src) override {
    if (!dst) return;
    check_tensor("copy_from_host", "dst", dst, dst.dtype());
    if (!src) fail("copy_from_host", "src is null");
    std::memcpy(dst.data(), src, dst.bytes());
  }
  void copy_to_host(void* dst, const Tensor& src) override {
    if (!src) return;
    check_tensor("copy_to_host", "src", src, src.dtype());
    if (!dst) fail("copy_to_host", "dst is null");
    std::memcpy(dst, src.data(), src.bytes());
  }
  void copy(const Tensor& dst, const Tensor& src) override {
    if (dst.bytes() != src.bytes()) {
      fail("copy", "dst has " + std::to_string(dst.bytes()) + " bytes " + shape_string(dst.shape()) +
                       ", src has " + std::to_string(src.bytes()) + " bytes " + shape_string(src.shape()));
    }
    if (dst.bytes() == 0) return;
    check_tensor("copy", "dst", dst, dst.dtype());
    check_tensor("copy", "src", src, src.dtype());
    std::memmove(dst.data(), src.data(), dst.bytes());
  }
  void synchronize() override {}

  void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte,
                         const Tensor& wpe, int B, int T, int C) override {
    const char* op = "embedding_forward";
    check_dims(op, {{"B", B}, {"T", T}, {"C", C}});
    const std::int64_t BT = static_cast<std::int64_t>(B) * T;
    check(op, "out", out, BT * C, "B*T*C");
    check(op, "tokens", tokens, BT, "B*T", DType::i32);
    const auto vocab = table_rows(op, "wte", wte, C);
    if (table_rows(op, "wpe", wpe, C) < T) fail(op, "wpe has fewer than T = " + std::to_string(T) + " rows");
    check_tokens(op, tokens, BT, vocab);
    cpu::embedding_forward(f32(out), tokens.data_as<const std::int32_t>(), f32(wte), f32(wpe), B, T, C);
  }

  void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout,
                          const Tensor& tokens, int B, int T, int C) override {
    const char* op = "embedding_backward";
    check_dims(op, {{"B", B}, {"T", T}, {"C", C}});
    const std::int64_t BT = static_cast<std::int64_t>(B) * T;
    check(op, "dout", dout, BT * C, "B*T*C");
    check(op, "tokens", tokens, BT, "B*T", DType::i32);
    const auto vocab = table_rows(op, "dwte", dwte, C);
    if (table_rows(op, "dwpe", dwpe, C) < T) fail(op, "dwpe has fewer than T = " + std::to_string(T) + " rows");
    check_tokens(op, tokens, BT, vocab);
    cpu::embedding_backward(f32(dwte), f32(dwpe), f32(dout), tokens.data_as<const std::int32_t>(), B, T, C);
  }

  void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                         const Tensor& inp, const Tensor& weight, const Tensor& bias, int N,
                         int C) override {
    const char* op = "layernorm_forward";
    check_dims(op, {{"N", N}, {"C", C}});
    const std::int64_t NC = static_cast<std::int64_t>(N) * C;
    check(op, "out", out, NC, "N*C");
    check(op, "mean", mean, N, "N");
    check(op, "rstd", rstd, N, "N");
    check(op, "inp", inp, NC, "N*C");
    check(op, "weight", weight, C, "C");
    check(op, "bias", bias, C, "C");
    cpu::layernorm_forward(f32(out), f32(mean), f32(rstd), f32(inp), f32(weight), f32(bias), N, C);
  }

  void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                          const Tensor& dout, const Tensor& inp, const Tensor& weight,
                          const Tensor& mean, const Tensor& rstd, int N, int C) override {
    const char* op = "layernorm_backward";
    check_dims(op, {{"N", N}, {"C", C}});
    const std::int64_t NC = static_cast<std::int64_t>(N) * C;
    check(op, "dinp", dinp, NC, "N*C");
    check(op, "dweight", dweight, C, "C");
    check(op, "dbias", dbias, C, "C");
    check(op, "dout", dout, NC, "N*C");
    check(op, "inp", inp, NC, "N*C");
    check(op, "weight", weight, C, "C");
    check(op, "mean", mean, N, "N");
    check(op, "rstd", rstd, N, "N");
    cpu::layernorm_backward(f32(dinp), f32(dweight), f32(dbias), f32(dout), f32(inp), f32(weight),
                            f32(mean), f32(rstd), N, C);
  }

  void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                      const Tensor& bias, int N, int C, int OC) override {
    const char* op = "matmul_forward";
    check_dims(op, {{"N", N}, {"C", C}, {"OC", OC}});
    check(op, "out", out, static_cast<std::int64_t>(N) * OC, "N*OC");
    check(op, "inp", inp, static_cast<std::int64_t>(N) * C, "N*C");
    check(op, "weight", weight, static_cast<std::int64_t>(OC) * C, "OC*C");
    if (bias) check(op, "bias", bias, OC, "OC");
    cpu::matmul_forward(f32(out), f32(inp), f32(weight), f32(bias), N, C, OC);
  }

  void matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                       const Tensor& dout, const Tensor& inp, const Tensor& weight, int N, int C,
                       int OC) override {
    const char* op = "matmul_backward";
    check_dims(op, {{"N", N}, {"C", C}, {"OC", OC}});
    if (dinp) check(op, "dinp", dinp, static_cast<std::int64_t>(N) * C, "N*C");
    check(op, "dweight", dweight, static_cast<std::int64_t>(OC) * C, "OC*C");
    if (dbias) check(op, "dbias", dbias, OC, "OC");
    check(op, "dout", dout, static_cast<std::int64_t>(N) * OC, "N*OC");
    check(op, "inp", inp, static_cast<std::int64_t>(N) * C, "N*C");
    check(op, "weight", weight, static_cast<std::int64_t>(OC) * C, "OC*C");
    cpu::matmul_backward(f32(dinp), f32(dweight), f32(dbias), f32(dout), f32(inp), f32(weight), N, C, OC);
  }

  void attention_forward(const Tensor& out, const Tensor& att, const Tensor& qkv, int B, int T,
                         int C, int NH) override {
    const char* op = "attention_forward";
    check_attention_dims(op, B, T, C, NH);
    const std::int64_t BT = static_cast<std::int64_t>(B) * T;
    check(op, "out", out, BT * C, "B*T*C");
    check(op, "att", att, static_cast<std::int64_t>(B) * NH * T * T, "B*NH*T*T");
    check(op, "qkv", qkv, BT * 3 * C, "B*T*3C");
    cpu::attention_forward(f32(out), f32(att), f32(qkv), B, T, C, NH);
  }

  void attention_backward(const Tensor& dqkv, const Tensor& datt, const Tensor& dout,
                          const Tensor& qkv, const Tensor& att, int B, int T, int C,
                          int NH) override {
    const char* op = "attention_backward";
    check_attention_dims(op, B, T, C, NH);
    const std::int64_t BT = static_cast<std::int64_t>(B) * T;
    const std::int64_t att_n = static_cast<std::int64_t>(B) * NH * T * T;
    check(op, "dqkv", dqkv, BT * 3 * C, "B*T*3C");
    check(op, "datt", datt, att_n, "B*NH*T*T");
    check(op, "dout", dout, BT * C, "B*T*C");
    check(op, "qkv", qkv, BT * 3 * C, "B*T*3C");
    check(op, "att", att, att_n, "B*NH*T*T");
    cpu::attention_backward(f32(dqkv), f32(datt), f32(dout), f32(qkv), f32(att), B, T, C, NH);
  }

  void gelu_forward(const Tensor& out, const Tensor& inp, std::int64_t N) override {
    const char* op = "gelu_forward";
    check_dims(op, {{"N", N}});
    check(op, "out", out, N, "N");
    check(op, "inp", inp, N, "N");
    cpu::gelu_forward(f32(out), f32(inp), N);
  }

  void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout,
                     std::int64_t N) override {
    const char* op = "gelu_backward";
    check_dims(op, {{"N", N}});
    check(op, "dinp", dinp, N, "N");
    check(op, "inp", inp, N, "N");
    check(op, "dout", dout, N, "N");
    cpu::gelu_backward(f32(dinp), f32(inp), f32(dout), N);
  }

  void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b,
                        std::int64_t N) override {
    const char* op = "residual_forward";
    check_dims(op, {{"N", N}});
    check(op, "out", out, N, "N");
    check(op, "a", a, N, "N");
    check(op, "b", b, N, "N");
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
    const char* op = "axpby";
    check_dims(op, {{"N", N}});
    check(op, "y", y, N, "N");
    check(op, "x", x, N, "N");
    cpu::axpby(f32(y), a, f32(x), b, N);
  }

  double sum_squares(const Tensor& x, std::int64_t N) override {
    const char* op = "sum_squares";
    check_dims(op, {{"N", N}});
    check(op, "x", x, N, "N");
    return cpu::sum_squares(f32(x), N);
  }

  void crossentropy_forward_backward(const Tensor& losses, const Tensor& dlogits,
                                     const Tensor& logits, const Tensor& targets, float dloss,
                                     int N, int V) override {
    const char* op = "crossentropy_forward_backward";
    check_dims(op, {{"N", N}, {"V", V}});
    const std::int64_t NV = static_cast<std::int64_t>(N) * V;
    check(op, "losses", losses, N, "N");
    if (dlogits) check(op, "dlogits", dlogits, NV, "N*V");
    check(op, "logits", logits, NV, "N*V");
    check(op, "targets", targets, N, "N", DType::i32);
    const auto* tgt = targets.data_as<const std::int32_t>();
    for (int n = 0; n < N; ++n) {
      if (tgt[n] >= V) {
        fail(op, "target " + std::to_string(tgt[n]) + " at row " + std::to_string(n) +
                     " is not below V = " + std::to_string(V));
      }
    }
    cpu::crossentropy_forward_backward(f32(losses), f32(dlogits), f32(logits), tgt, dloss, N, V);
  }

  void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                    std::int64_t N, float lr, float beta1, float beta2, float eps,
                    float weight_decay, std::int64_t t) override {
    const char* op = "adamw_update";
    check_dims(op, {{"N", N}, {"t", t}});
    check(op, "param", param, N, "N");
    check(op, "grad", grad, N, "N");
    check(op, "m", m, N, "N");
    check(op, "v", v, N, "N");
    cpu::adamw_update(f32(param), f32(grad), f32(m), f32(v), N, lr, beta1, beta2, eps,
                      weight_decay, t);
  }

 private:
  static void check_attention_dims(const char* op, int B, int T, int C, int NH) {
    check_dims(op, {{"B", B}, {"T", T}, {"C", C}, {"NH", NH}});
    if (C % NH != 0) {
      fail(op, "C = " + std::to_string(C) + " is not divisible by NH = " + std::to_string(NH));
    }
  }

  static void dropout(const char* op, const char* out_name, const Tensor& out,
                      const char* in_name, const Tensor& inp, float p, RngKey key,
                      std::int64_t N) {
    check_dims(op, {{"N", N}});
    check(op, out_name, out, N, "N");
    check(op, in_name, inp, N, "N");
    if (!(p >= 0.0f && p < 1.0f)) fail(op, "p = " + std::to_string(p) + " is outside [0, 1)");
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
