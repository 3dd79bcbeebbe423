// OpChecks: argument checks for Backend ops, shared by every backend so that a wrong tensor
// gives the same message whichever backend runs it ("cpu backend: matmul_forward: weight has
// shape [3,4] (12 elements), expected OC*C = 15 elements"). Header-only. The primitives
// (dims, tensor, numel, table_rows) come first, then one function per op listing which tensor
// must have which element count. An op's activations take `act` (f32, or bf16 where a backend
// computes in mixed precision); parameter gradients, optimizer state, losses and statistics
// are f32 always. Checks a backend alone needs (grid limits, alignment, token ids read on the
// host) stay in the backend.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "trainer/tensor.hpp"

namespace trainer {

class OpChecks {
 public:
  // backend: message prefix ("cpu backend"); memory: where its tensors live, for messages.
  constexpr OpChecks(const char* backend, Device device, const char* memory)
      : backend_(backend), device_(device), memory_(memory) {}

  [[noreturn]] void fail(const char* op, const std::string& message) const {
    std::string text = backend_;
    text += ": ";
    text += op;
    text += ": ";
    text += message;
    throw std::invalid_argument(text);
  }

  // Every named dimension must be positive.
  void dims(const char* op, std::initializer_list<std::pair<const char*, std::int64_t>> dims) const {
    for (const auto& [name, value] : dims) {
      if (value <= 0) fail(op, std::string(name) + " = " + std::to_string(value) + " must be positive");
    }
  }

  // Present, on this backend's device, of `dtype`.
  void tensor(const char* op, const char* name, const Tensor& t, DType dtype) const {
    if (!t) fail(op, std::string(name) + " is empty");
    if (t.device() != device_) fail(op, std::string(name) + " is not in " + memory_);
    if (t.dtype() != dtype) {
      fail(op, std::string(name) + " is " + dtype_name(t.dtype()) + ", expected " + dtype_name(dtype));
    }
  }

  // As tensor(), with the element count the dimensions imply; `formula` names it.
  void numel(const char* op, const char* name, const Tensor& t, std::int64_t expected, const char* formula,
             DType dtype = DType::f32) const {
    tensor(op, name, t, dtype);
    if (t.numel() != expected) {
      fail(op, std::string(name) + " has shape " + shape_string(t.shape()) + " (" + std::to_string(t.numel()) +
                   " elements), expected " + formula + " = " + std::to_string(expected) + " elements");
    }
  }

  // An elementwise op's tensors: N > 0, and each named tensor N elements of `dtype`, checked in
  // the order given.
  void elementwise(const char* op, std::int64_t N, DType dtype,
                   std::initializer_list<std::pair<const char*, const Tensor*>> tensors) const {
    dims(op, {{"N", N}});
    for (const auto& [name, t] : tensors) numel(op, name, *t, N, "N", dtype);
  }

  // A table of any row count: its size must be a whole number of rows of C.
  std::int64_t table_rows(const char* op, const char* name, const Tensor& t, int C, DType dtype = DType::f32) const {
    tensor(op, name, t, dtype);
    if (t.numel() == 0 || t.numel() % C != 0) {
      fail(op, std::string(name) + " has shape " + shape_string(t.shape()) +
                   ", not a whole number of rows of C = " + std::to_string(C));
    }
    return t.numel() / C;
  }

  // --- one function per op (arguments as the Backend op takes them) ---

  // The memory ops: the caller returns early for an empty tensor (nothing to move).
  void copy_from_host(const Tensor& dst, const void* src) const {
    tensor("copy_from_host", "dst", dst, dst.dtype());
    if (!src) fail("copy_from_host", "src is null");
  }

  void copy_to_host(const void* dst, const Tensor& src) const {
    tensor("copy_to_host", "src", src, src.dtype());
    if (!dst) fail("copy_to_host", "dst is null");
  }

  // The same byte count; an empty copy (nothing to move) needs nothing more.
  void copy(const Tensor& dst, const Tensor& src) const {
    if (dst.bytes() != src.bytes()) {
      fail("copy", "dst has " + std::to_string(dst.bytes()) + " bytes " + shape_string(dst.shape()) + ", src has " +
                       std::to_string(src.bytes()) + " bytes " + shape_string(src.shape()));
    }
    if (dst.bytes() == 0) return;
    tensor("copy", "dst", dst, dst.dtype());
    tensor("copy", "src", src, src.dtype());
  }

  // dst of dst_dtype, src of src_dtype (pass their own dtypes to accept any), as many
  // elements. Which conversions exist is the backend's to say.
  void convert(const Tensor& dst, DType dst_dtype, const Tensor& src, DType src_dtype) const {
    tensor("convert", "dst", dst, dst_dtype);
    tensor("convert", "src", src, src_dtype);
    if (dst.numel() != src.numel()) {
      fail("convert", "dst has " + std::to_string(dst.numel()) + " elements, src has " + std::to_string(src.numel()));
    }
  }

  // Returns the vocabulary size (wte's rows). Token ids are data: each backend checks them.
  std::int64_t embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor& wpe, int B,
                                 int T, int C, DType act = DType::f32) const {
    return embedding("embedding_forward", "out", out, tokens, "wte", wte, "wpe", wpe, B, T, C, act, act);
  }

  // dout in `act`; the tables it accumulates into are f32. Returns the vocabulary size.
  std::int64_t embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout, const Tensor& tokens,
                                  int B, int T, int C, DType act = DType::f32) const {
    return embedding("embedding_backward", "dout", dout, tokens, "dwte", dwte, "dwpe", dwpe, B, T, C, act, DType::f32);
  }

  void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                         const Tensor& weight, const Tensor& bias, int N, int C, DType act = DType::f32) const {
    const char* op = "layernorm_forward";
    dims(op, {{"N", N}, {"C", C}});
    const std::int64_t NC = static_cast<std::int64_t>(N) * C;
    numel(op, "out", out, NC, "N*C", act);
    numel(op, "mean", mean, N, "N");
    numel(op, "rstd", rstd, N, "N");
    numel(op, "inp", inp, NC, "N*C", act);
    numel(op, "weight", weight, C, "C", act);
    numel(op, "bias", bias, C, "C", act);
  }

  void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                          const Tensor& inp, const Tensor& weight, const Tensor& mean, const Tensor& rstd, int N,
                          int C, DType act = DType::f32) const {
    const char* op = "layernorm_backward";
    dims(op, {{"N", N}, {"C", C}});
    const std::int64_t NC = static_cast<std::int64_t>(N) * C;
    numel(op, "dinp", dinp, NC, "N*C", act);
    numel(op, "dweight", dweight, C, "C");
    numel(op, "dbias", dbias, C, "C");
    numel(op, "dout", dout, NC, "N*C", act);
    numel(op, "inp", inp, NC, "N*C", act);
    numel(op, "weight", weight, C, "C", act);
    numel(op, "mean", mean, N, "N");
    numel(op, "rstd", rstd, N, "N");
  }

  // inp and weight in `act`; out and bias in `out_dtype` (a mixed-precision backend may write
  // f32 logits from bf16 inputs). bias may be empty.
  void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor& bias, int N, int C,
                      int OC, DType act = DType::f32, DType out_dtype = DType::f32) const {
    const char* op = "matmul_forward";
    dims(op, {{"N", N}, {"C", C}, {"OC", OC}});
    numel(op, "out", out, static_cast<std::int64_t>(N) * OC, "N*OC", out_dtype);
    numel(op, "inp", inp, static_cast<std::int64_t>(N) * C, "N*C", act);
    numel(op, "weight", weight, static_cast<std::int64_t>(OC) * C, "OC*C", act);
    if (bias) numel(op, "bias", bias, OC, "OC", out_dtype);
  }

  // dinp and dbias may be empty; dweight and dbias are f32.
  void matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                       const Tensor& inp, const Tensor& weight, int N, int C, int OC, DType act = DType::f32) const {
    const char* op = "matmul_backward";
    dims(op, {{"N", N}, {"C", C}, {"OC", OC}});
    if (dinp) numel(op, "dinp", dinp, static_cast<std::int64_t>(N) * C, "N*C", act);
    numel(op, "dweight", dweight, static_cast<std::int64_t>(OC) * C, "OC*C");
    if (dbias) numel(op, "dbias", dbias, OC, "OC");
    numel(op, "dout", dout, static_cast<std::int64_t>(N) * OC, "N*OC", act);
    numel(op, "inp", inp, static_cast<std::int64_t>(N) * C, "N*C", act);
    numel(op, "weight", weight, static_cast<std::int64_t>(OC) * C, "OC*C", act);
  }

  // bias may be empty.
  void matmul_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& inp, const Tensor& weight,
                           const Tensor& bias, int N, int C, int OC, DType act = DType::f32) const {
    const char* op = "matmul_gelu_forward";
    dims(op, {{"N", N}, {"C", C}, {"OC", OC}});
    const std::int64_t NOC = static_cast<std::int64_t>(N) * OC;
    numel(op, "out", out, NOC, "N*OC", act);
    numel(op, "pre", pre, NOC, "N*OC", act);
    numel(op, "inp", inp, static_cast<std::int64_t>(N) * C, "N*C", act);
    numel(op, "weight", weight, static_cast<std::int64_t>(OC) * C, "OC*C", act);
    if (bias) numel(op, "bias", bias, OC, "OC", act);
  }

  // dpre and pre only: the other tensors are matmul_backward's, which checks them.
  void matmul_gelu_backward(const Tensor& dpre, const Tensor& pre, int N, int C, int OC,
                            DType act = DType::f32) const {
    const char* op = "matmul_gelu_backward";
    dims(op, {{"N", N}, {"C", C}, {"OC", OC}});
    const std::int64_t NC = static_cast<std::int64_t>(N) * C;
    numel(op, "dpre", dpre, NC, "N*C", act);
    numel(op, "pre", pre, NC, "N*C", act);
  }

  // qkv first: a backend takes `act` from it.
  void attention_forward(const Tensor& out, const Tensor& stats, const Tensor& qkv, int B, int T, int C, int NH,
                         DType act = DType::f32) const {
    const char* op = "attention_forward";
    attention_dims(op, B, T, C, NH);
    const std::int64_t BT = static_cast<std::int64_t>(B) * T;
    numel(op, "qkv", qkv, BT * 3 * C, "B*T*3C", act);
    numel(op, "out", out, BT * C, "B*T*C", act);
    numel(op, "stats", stats, static_cast<std::int64_t>(B) * NH * T, "B*NH*T");
  }

  void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                          const Tensor& stats, int B, int T, int C, int NH, DType act = DType::f32) const {
    const char* op = "attention_backward";
    attention_dims(op, B, T, C, NH);
    const std::int64_t BT = static_cast<std::int64_t>(B) * T;
    numel(op, "qkv", qkv, BT * 3 * C, "B*T*3C", act);
    numel(op, "dqkv", dqkv, BT * 3 * C, "B*T*3C", act);
    numel(op, "dout", dout, BT * C, "B*T*C", act);
    numel(op, "out", out, BT * C, "B*T*C", act);
    numel(op, "stats", stats, static_cast<std::int64_t>(B) * NH * T, "B*NH*T");
  }

  void gelu_forward(const Tensor& out, const Tensor& inp, std::int64_t N, DType act = DType::f32) const {
    elementwise("gelu_forward", N, act, {{"out", &out}, {"inp", &inp}});
  }

  void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout, std::int64_t N,
                     DType act = DType::f32) const {
    elementwise("gelu_backward", N, act, {{"dinp", &dinp}, {"inp", &inp}, {"dout", &dout}});
  }

  void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b, std::int64_t N,
                        DType act = DType::f32) const {
    elementwise("residual_forward", N, act, {{"out", &out}, {"a", &a}, {"b", &b}});
  }

  // dropout_forward (out, inp) and dropout_backward (dinp, dout): op and names say which.
  void dropout(const char* op, const char* out_name, const Tensor& out, const char* in_name, const Tensor& inp,
               float p, std::int64_t N, DType act = DType::f32) const {
    elementwise(op, N, act, {{out_name, &out}, {in_name, &inp}});
    if (!(p >= 0.0f && p < 1.0f)) fail(op, "p = " + std::to_string(p) + " is outside [0, 1)");
  }

  void axpby(const Tensor& y, const Tensor& x, std::int64_t N) const {
    elementwise("axpby", N, DType::f32, {{"y", &y}, {"x", &x}});
  }

  void sum_squares(const Tensor& x, std::int64_t N) const {
    elementwise("sum_squares", N, DType::f32, {{"x", &x}});
  }

  // dlogits may be empty. Target ids are data: each backend checks them.
  void crossentropy_forward_backward(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                                     const Tensor& targets, int N, int V, DType act = DType::f32) const {
    const char* op = "crossentropy_forward_backward";
    dims(op, {{"N", N}, {"V", V}});
    const std::int64_t NV = static_cast<std::int64_t>(N) * V;
    numel(op, "losses", losses, N, "N");
    if (dlogits) numel(op, "dlogits", dlogits, NV, "N*V", act);
    numel(op, "logits", logits, NV, "N*V", act);
    numel(op, "targets", targets, N, "N", DType::i32);
  }

  void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, std::int64_t N,
                    std::int64_t t) const {
    const char* op = "adamw_update";
    dims(op, {{"N", N}, {"t", t}});
    adamw_tensors(op, param, grad, m, v, N);
  }

  // One entry of adamw_update_many (op names it): four f32 tensors of N elements.
  void adamw_tensors(const char* op, const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                     std::int64_t N) const {
    numel(op, "param", param, N, "N");
    numel(op, "grad", grad, N, "N");
    numel(op, "m", m, N, "N");
    numel(op, "v", v, N, "N");
  }

 private:
  void attention_dims(const char* op, int B, int T, int C, int NH) const {
    dims(op, {{"B", B}, {"T", T}, {"C", C}, {"NH", NH}});
    if (C % NH != 0) fail(op, "C = " + std::to_string(C) + " is not divisible by NH = " + std::to_string(NH));
  }

  // The embedding ops: acts ([B,T,C] in `act`), tokens [B,T] i32, and two tables of C columns
  // in `table` (the token table, and the position table of at least T rows).
  std::int64_t embedding(const char* op, const char* acts_name, const Tensor& acts, const Tensor& tokens,
                         const char* wte_name, const Tensor& wte, const char* wpe_name, const Tensor& wpe, int B,
                         int T, int C, DType act, DType table) const {
    dims(op, {{"B", B}, {"T", T}, {"C", C}});
    const std::int64_t BT = static_cast<std::int64_t>(B) * T;
    numel(op, acts_name, acts, BT * C, "B*T*C", act);
    numel(op, "tokens", tokens, BT, "B*T", DType::i32);
    const std::int64_t vocab = table_rows(op, wte_name, wte, C, table);
    if (table_rows(op, wpe_name, wpe, C, table) < T) {
      fail(op, std::string(wpe_name) + " has fewer than T = " + std::to_string(T) + " rows");
    }
    return vocab;
  }

  const char* backend_;
  Device device_;
  const char* memory_;
};

}  // namespace trainer
