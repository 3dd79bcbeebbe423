#include "bf16_ops.hpp"

#include <cuda_bf16.h>

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

#include "kernels/convert.cuh"
#include "kernels/crossentropy_bf16.cuh"
#include "kernels/elementwise_bf16.cuh"
#include "kernels/layernorm_bf16.cuh"
#include "trainer/op_checks.hpp"

namespace trainer::gpu {
namespace {

constexpr OpChecks kChecks{"cuda backend", Device::cuda, "device (cuda) memory"};
constexpr DType kBf16 = DType::bf16;

void check_cuda(cudaError_t status, const char* op, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("cuda backend: ") + op + ": " + what + " failed: " +
                             cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
}

__nv_bfloat16* bf(const Tensor& t) { return t ? t.data_as<__nv_bfloat16>() : nullptr; }
float* f32(const Tensor& t) { return t ? t.data_as<float>() : nullptr; }
const std::int32_t* i32(const Tensor& t) { return t.data_as<const std::int32_t>(); }

void check_chunks(const char* op, std::int64_t N) {
  if (bf16_column_chunks(N) > 65535) kChecks.fail(op, "N = " + std::to_string(N) + " rows is more than one grid handles");
}

}  // namespace

Tensor Bf16Ops::to_f32(const Tensor& t) {
  Tensor f = be_.allocate(t.shape(), DType::f32);
  check_cuda(convert_bf16_to_f32(f32(f), bf(t), t.numel(), stream_), "convert", "kernel launch");
  return f;
}

void Bf16Ops::convert(const Tensor& dst, const Tensor& src) {
  const char* op = "convert";
  kChecks.convert(dst, dst.dtype(), src, src.dtype());
  if (src.numel() == 0) return;
  if (dst.dtype() == DType::bf16 && src.dtype() == DType::f32) {
    check_cuda(convert_f32_to_bf16(bf(dst), f32(src), src.numel(), stream_), op, "kernel launch");
  } else if (dst.dtype() == DType::f32 && src.dtype() == DType::bf16) {
    check_cuda(convert_bf16_to_f32(f32(dst), bf(src), src.numel(), stream_), op, "kernel launch");
  } else {
    kChecks.fail(op, std::string("cannot convert ") + dtype_name(src.dtype()) + " to " + dtype_name(dst.dtype()));
  }
}

void Bf16Ops::embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor& wpe, int B,
                                int T, int C) {
  const char* op = "embedding_forward";
  const std::int64_t vocab = kChecks.embedding_forward(out, tokens, wte, wpe, B, T, C, kBf16);
  check_cuda(embedding_forward_bf16(bf(out), i32(tokens), bf(wte), bf(wpe), B, T, C, vocab, error_word_, stream_),
             op, "kernel launch");
}

// dout is converted once ([B,T,C], small next to the vocabulary) and the f32 op's
// deterministic sorted accumulation does the rest.
void Bf16Ops::embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout, const Tensor& tokens,
                                 int B, int T, int C) {
  kChecks.embedding_backward(dwte, dwpe, dout, tokens, B, T, C, kBf16);
  be_.embedding_backward(dwte, dwpe, to_f32(dout), tokens, B, T, C);
}

void Bf16Ops::layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                                const Tensor& weight, const Tensor& bias, int N, int C) {
  const char* op = "layernorm_forward";
  kChecks.layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, kBf16);
  check_cuda(layernorm_forward_bf16(bf(out), f32(mean), f32(rstd), bf(inp), bf(weight), bf(bias), N, C, stream_), op,
             "kernel launch");
}

void Bf16Ops::layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                                 const Tensor& inp, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                                 int N, int C) {
  const char* op = "layernorm_backward";
  kChecks.layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, kBf16);
  check_chunks(op, N);
  Tensor scratch = be_.allocate({2 * bf16_column_chunks(N) * C}, DType::f32);
  check_cuda(layernorm_backward_bf16(bf(dinp), f32(dweight), f32(dbias), bf(dout), bf(inp), bf(weight), f32(mean),
                                     f32(rstd), N, C, f32(scratch), stream_),
             op, "kernel launch");
}

// Row-major out[N,OC] = inp[N,C] W[OC,C]^T is column-major out^T = W^T... as cuBLAS sees it:
// D[OC,N] = op(A = W stored C x OC, transposed) B (inp stored C x N).
namespace {

// out[N,OC] = inp[N,C] W[OC,C]^T, row-major, as cuBLAS's column-major out^T = W inp^T: the
// weight (ld C) transposed, the input (ld C) as is, out with ld OC. Bias, epilogue and types
// are the caller's.
LtShape forward_shape(int N, int C, int OC) {
  LtShape s;
  s.ta = CUBLAS_OP_T;
  s.tb = CUBLAS_OP_N;
  s.m = OC;
  s.n = N;
  s.k = C;
  s.lda = C;
  s.ldb = C;
  s.ldd = OC;
  return s;
}

}  // namespace

void Bf16Ops::matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor& bias, int N,
                             int C, int OC) {
  const char* op = "matmul_forward";
  kChecks.dims(op, {{"N", N}, {"C", C}, {"OC", OC}});
  if (!out) kChecks.fail(op, "out is empty");
  const DType out_type = out.dtype();  // bf16, or f32 for logits read on the host
  if (out_type != kBf16 && out_type != DType::f32) kChecks.fail(op, "out must be bf16 or f32");
  kChecks.matmul_forward(out, inp, weight, bias, N, C, OC, kBf16, out_type);
  LtShape s = forward_shape(N, C, OC);
  s.d_type = out_type == kBf16 ? CUDA_R_16BF : CUDA_R_32F;
  // The bias epilogue wants an aligned bias vector; a parameter view may not be.
  const bool epilogue = bias && reinterpret_cast<std::uintptr_t>(bias.data()) % 16 == 0;
  const bool separate = bias && !epilogue;
  if (separate && out_type != kBf16) kChecks.fail(op, "an unaligned bias needs a bf16 out");
  s.bias = epilogue;
  lt_.run(op, s, weight.data(), inp.data(), out.data(), epilogue ? bias.data() : nullptr);
  if (separate) check_cuda(add_bias_rows_bf16(bf(out), bf(bias), N, OC, stream_), op, "bias kernel launch");
}

bool Bf16Ops::fuses_residual(const Tensor& out, const Tensor& bias, const Tensor& residual) {
  return out && residual && out.dtype() == kBf16 && residual.dtype() == kBf16 &&
         (!bias || reinterpret_cast<std::uintptr_t>(bias.data()) % 16 == 0);
}

void Bf16Ops::matmul_residual_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor& bias,
                                      const Tensor& residual, int N, int C, int OC) {
  const char* op = "matmul_residual_forward";
  kChecks.matmul_forward(out, inp, weight, bias, N, C, OC, kBf16, kBf16);
  kChecks.numel(op, "residual", residual, static_cast<std::int64_t>(N) * OC, "N*OC", kBf16);
  LtShape s = forward_shape(N, C, OC);
  s.bias = static_cast<bool>(bias);
  s.accumulate = true;
  lt_.run(op, s, weight.data(), inp.data(), out.data(), bias ? bias.data() : nullptr, 1.0f, nullptr, residual.data());
}

// dinp[N,C] = dout[N,OC] W[OC,C]: column-major D[C,N] = (W stored C x OC) (dout stored OC x N).
void Bf16Ops::matmul_backward_dinp(const Tensor& dinp, const Tensor& dout, const Tensor& weight, int N, int C,
                                   int OC) {
  LtShape s;
  s.m = C;
  s.n = N;
  s.k = OC;
  s.lda = C;
  s.ldb = OC;
  s.ldd = C;
  lt_.run("matmul_backward", s, weight.data(), dout.data(), dinp.data(), nullptr);
}

void Bf16Ops::matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                              const Tensor& inp, const Tensor& weight, int N, int C, int OC) {
  const char* op = "matmul_backward";
  kChecks.matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, kBf16);
  if (dbias) check_chunks(op, N);
  if (dinp) matmul_backward_dinp(dinp, dout, weight, N, C, OC);
  // dweight[OC,C] += dout^T inp: column-major D[C,OC] += (inp stored C x N) (dout stored OC x N)^T,
  // accumulated in f32 (beta = 1).
  LtShape s;
  s.tb = CUBLAS_OP_T;
  s.m = C;
  s.n = OC;
  s.k = N;
  s.lda = C;
  s.ldb = OC;
  s.ldd = C;
  s.d_type = CUDA_R_32F;
  s.accumulate = true;
  lt_.run(op, s, inp.data(), dout.data(), dweight.data(), nullptr);
  if (dbias) {
    Tensor scratch = be_.allocate({bf16_column_chunks(N) * OC}, DType::f32);
    check_cuda(column_sums_bf16(f32(dbias), f32(scratch), bf(dout), N, OC, stream_), op, "bias kernel launch");
  }
}

namespace {

bool aligned16(const Tensor& t) { return reinterpret_cast<std::uintptr_t>(t.data()) % 16 == 0; }

}  // namespace

void Bf16Ops::matmul_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& inp, const Tensor& weight,
                                  const Tensor& bias, int N, int C, int OC) {
  const char* op = "matmul_gelu_forward";
  kChecks.matmul_gelu_forward(out, pre, inp, weight, bias, N, C, OC, kBf16);
  const std::int64_t NOC = static_cast<std::int64_t>(N) * OC;
  const auto separate = [&] {
    matmul_forward(pre, inp, weight, bias, N, C, OC);
    gelu_forward(out, pre, NOC);
  };
  if (gelu_epilogue_unavailable_ || OC % 8 != 0 || !aligned16(out) || !aligned16(pre) ||
      (bias && !aligned16(bias))) {
    return separate();
  }
  LtShape s = forward_shape(N, C, OC);
  s.bias = static_cast<bool>(bias);
  s.gelu = LtShape::Gelu::forward;
  try {
    lt_.run(op, s, weight.data(), inp.data(), out.data(), bias ? bias.data() : nullptr, 1.0f, pre.data());
  } catch (const std::runtime_error& e) {
    epilogue_unavailable(e);
    separate();
  }
}

// A cuBLASLt without the GELU epilogues for these types (no algorithm, or not supported)
// fails before launching anything: the separate ops take over from then on, said once.
void Bf16Ops::epilogue_unavailable(const std::exception& e) {
  gelu_epilogue_unavailable_ = true;
  std::fprintf(stderr, "cuda backend: GELU epilogue unavailable, using the separate GELU kernels: %s\n", e.what());
}

void Bf16Ops::matmul_gelu_backward(const Tensor& dpre, const Tensor& dweight, const Tensor& dbias,
                                   const Tensor& dout, const Tensor& inp, const Tensor& pre, const Tensor& weight,
                                   int N, int C, int OC) {
  const char* op = "matmul_gelu_backward";
  kChecks.matmul_gelu_backward(dpre, pre, N, C, OC, kBf16);
  const std::int64_t NC = static_cast<std::int64_t>(N) * C;
  const auto separate = [&](bool parameter_gradients) {
    Tensor dinp = be_.allocate(pre.shape(), kBf16);
    if (parameter_gradients) {
      matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    } else {
      matmul_backward_dinp(dinp, dout, weight, N, C, OC);
    }
    gelu_backward(dpre, pre, dinp, NC);
  };
  if (gelu_epilogue_unavailable_ || C % 8 != 0 || !aligned16(dpre) || !aligned16(pre)) return separate(true);
  // Parameter gradients as matmul_backward (which checks the other tensors), then
  // dpre[N,C] = (dout W) * gelu'(pre): the dinp product with the dgelu epilogue.
  matmul_backward(Tensor(), dweight, dbias, dout, inp, weight, N, C, OC);
  LtShape s;
  s.m = C;
  s.n = N;
  s.k = OC;
  s.lda = C;
  s.ldb = OC;
  s.ldd = C;
  s.gelu = LtShape::Gelu::backward;
  try {
    lt_.run(op, s, weight.data(), dout.data(), dpre.data(), nullptr, 1.0f, pre.data());
  } catch (const std::runtime_error& e) {
    epilogue_unavailable(e);
    separate(false);
  }
}

void Bf16Ops::gelu_forward(const Tensor& out, const Tensor& inp, std::int64_t N) {
  const char* op = "gelu_forward";
  kChecks.gelu_forward(out, inp, N, kBf16);
  check_cuda(gelu_forward_bf16(bf(out), bf(inp), N, stream_), op, "kernel launch");
}

void Bf16Ops::gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout, std::int64_t N) {
  const char* op = "gelu_backward";
  kChecks.gelu_backward(dinp, inp, dout, N, kBf16);
  check_cuda(gelu_backward_bf16(bf(dinp), bf(inp), bf(dout), N, stream_), op, "kernel launch");
}

void Bf16Ops::residual_forward(const Tensor& out, const Tensor& a, const Tensor& b, std::int64_t N) {
  const char* op = "residual_forward";
  kChecks.residual_forward(out, a, b, N, kBf16);
  check_cuda(residual_forward_bf16(bf(out), bf(a), bf(b), N, stream_), op, "kernel launch");
}

void Bf16Ops::dropout(const char* op, const char* out_name, const Tensor& out, const char* in_name,
                      const Tensor& inp, float p, RngKey key, std::int64_t N) {
  kChecks.dropout(op, out_name, out, in_name, inp, p, N, kBf16);
  if (p == 0.0f) {
    if (out.data() != inp.data()) {
      check_cuda(cudaMemcpyAsync(out.data(), inp.data(), out.bytes(), cudaMemcpyDeviceToDevice, stream_), op,
                 "cudaMemcpyAsync");
    }
    return;
  }
  check_cuda(dropout_apply_bf16(bf(out), bf(inp), p, 1.0f / (1.0f - p), key, N, stream_), op, "kernel launch");
}

void Bf16Ops::crossentropy_forward_backward(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                                            const Tensor& targets, float dloss, int N, int V) {
  const char* op = "crossentropy_forward_backward";
  kChecks.crossentropy_forward_backward(losses, dlogits, logits, targets, N, V, kBf16);
  check_cuda(crossentropy_forward_backward_bf16(f32(losses), bf(dlogits), bf(logits), i32(targets), dloss, N, V,
                                                error_word_, stream_),
             op, "kernel launch");
}

}  // namespace trainer::gpu
