// Backend's default fused ops: the composition of the ops they fuse, so that a backend
// without a fused kernel (cpu) needs nothing more and gives the reference results.
#include "trainer/backend.hpp"

namespace trainer {

void Backend::matmul_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& inp, const Tensor& weight,
                                  const Tensor& bias, int N, int C, int OC) {
  matmul_forward(pre, inp, weight, bias, N, C, OC);
  gelu_forward(out, pre, static_cast<std::int64_t>(N) * OC);
}

void Backend::matmul_gelu_backward(const Tensor& dpre, const Tensor& dweight, const Tensor& dbias,
                                   const Tensor& dout, const Tensor& inp, const Tensor& pre, const Tensor& weight,
                                   int N, int C, int OC) {
  const Tensor dinp = allocate(pre.shape(), pre.dtype());
  matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
  gelu_backward(dpre, pre, dinp, static_cast<std::int64_t>(N) * C);
}

void Backend::adamw_update_many(const std::vector<AdamWTensors>& tensors, float lr, float beta1, float beta2,
                                float eps, std::int64_t t) {
  for (const auto& x : tensors) {
    adamw_update(x.param, x.grad, x.m, x.v, x.param.numel(), lr, beta1, beta2, eps, x.weight_decay, t);
  }
}

}  // namespace trainer
