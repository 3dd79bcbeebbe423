// Bf16Ops: the cuda backend's mixed-precision op variants, taken when an op's activations
// are bf16. bf16 activations and parameter compute copies in, f32 arithmetic, f32 parameter
// gradients (accumulated), f32 losses and layernorm statistics. Matrix products go through
// cuBLASLt (bf16 tensor cores, f32 accumulation); ops without a bf16 kernel of their own
// (embedding backward) convert to f32 scratch and call the backend's f32 op. Host C++.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <exception>

#include "lt_matmul.hpp"
#include "trainer/backend.hpp"

namespace trainer::gpu {

class Bf16Ops {
 public:
  // backend: scratch comes from its allocate() (the caching pool), f32 fallbacks run on it.
  Bf16Ops(Backend& backend, cudaStream_t stream, LtMatmul& lt, unsigned* error_word)
      : be_(backend), stream_(stream), lt_(lt), error_word_(error_word) {}

  void convert(const Tensor& dst, const Tensor& src);
  void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor& wpe, int B, int T,
                         int C);
  void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout, const Tensor& tokens, int B,
                          int T, int C);
  void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                         const Tensor& weight, const Tensor& bias, int N, int C);
  void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                          const Tensor& inp, const Tensor& weight, const Tensor& mean, const Tensor& rstd, int N,
                          int C);
  void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor& bias, int N, int C,
                      int OC);
  void matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                       const Tensor& inp, const Tensor& weight, int N, int C, int OC);
  // out = residual + inp W^T + bias in one cuBLASLt call (the residual as C, beta = 1): only
  // for bf16 out and residual and an aligned bias (fuses_residual); else the caller composes.
  static bool fuses_residual(const Tensor& out, const Tensor& bias, const Tensor& residual);
  void matmul_residual_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor& bias,
                               const Tensor& residual, int N, int C, int OC);
  // GELU fused into the product's epilogue (cuBLASLt GELU_AUX_BIAS forward, DGELU backward)
  // when the tensors are aligned for it (16 bytes, OC or C a multiple of 8); otherwise the
  // separate ops.
  void matmul_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& inp, const Tensor& weight,
                           const Tensor& bias, int N, int C, int OC);
  void matmul_gelu_backward(const Tensor& dpre, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                            const Tensor& inp, const Tensor& pre, const Tensor& weight, int N, int C, int OC);
  void gelu_forward(const Tensor& out, const Tensor& inp, std::int64_t N);
  void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout, std::int64_t N);
  void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b, std::int64_t N);
  void dropout(const char* op, const char* out_name, const Tensor& out, const char* in_name, const Tensor& inp,
               float p, RngKey key, std::int64_t N);
  void crossentropy_forward_backward(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                                     const Tensor& targets, float dloss, int N, int V);

 private:
  Tensor to_f32(const Tensor& t);  // a converted scratch copy
  void matmul_backward_dinp(const Tensor& dinp, const Tensor& dout, const Tensor& weight, int N, int C, int OC);
  void epilogue_unavailable(const std::exception& e);

  Backend& be_;
  cudaStream_t stream_;
  LtMatmul& lt_;
  unsigned* error_word_;
  bool gelu_epilogue_unavailable_ = false;
};

}  // namespace trainer::gpu
