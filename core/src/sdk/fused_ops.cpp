// Backend's default fused ops: the composition of the ops they fuse, so that a backend
// without a fused kernel (cpu) needs nothing more and gives the reference results.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/backend.hpp"

namespace trainer {
namespace {

void require_f32_logits(const Tensor& logits, const char* op) {
  if (logits.dtype() != DType::f32) {
    std::string s = op;
    s += ": this backend computes it for f32 logits only, not ";
    s += dtype_name(logits.dtype());
    throw std::invalid_argument(s);
  }
}

}  // namespace

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
    if (x.compute) convert(x.compute, x.param);
  }
}

void Backend::matmul_residual_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, const Tensor& bias,
                                      const Tensor& residual, int N, int C, int OC) {
  if (out.data() == residual.data()) {  // the product may not overwrite the residual it adds
    const Tensor product = allocate(out.shape(), out.dtype());
    matmul_forward(product, inp, weight, bias, N, C, OC);
    residual_forward(out, residual, product, static_cast<std::int64_t>(N) * OC);
    return;
  }
  matmul_forward(out, inp, weight, bias, N, C, OC);
  residual_forward(out, residual, out, static_cast<std::int64_t>(N) * OC);
}

// The vocabulary-parallel loss on the host, in double: the reference the device kernels are
// checked against.
void Backend::crossentropy_shard_stats(const Tensor& stats, const Tensor& logits, const Tensor& targets, int first,
                                       int N, int V) {
  require_f32_logits(logits, "crossentropy_shard_stats");
  const auto rows = static_cast<std::size_t>(N), cols = static_cast<std::size_t>(V);
  std::vector<float> z(rows * cols), out(3 * rows);
  std::vector<std::int32_t> target(rows);
  copy_to_host(z.data(), logits);
  copy_to_host(target.data(), targets);
  for (std::size_t i = 0; i < rows; ++i) {
    const float* row = z.data() + i * cols;
    float m = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < cols; ++j) m = std::max(m, row[j]);
    double s = 0;
    for (std::size_t j = 0; j < cols; ++j) s += std::exp(static_cast<double>(row[j]) - m);
    const std::int64_t t = static_cast<std::int64_t>(target[i]) - first;
    out[3 * i] = m;
    out[3 * i + 1] = static_cast<float>(s);
    out[3 * i + 2] = (target[i] >= 0 && t >= 0 && t < V) ? row[t] : 0.0f;
  }
  copy_from_host(stats, out.data());
}

void Backend::crossentropy_shard_finish(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                                        const Tensor& targets, const Tensor& all_stats, int shards, int first,
                                        float dloss, int N, int V) {
  require_f32_logits(logits, "crossentropy_shard_finish");
  const auto rows = static_cast<std::size_t>(N), cols = static_cast<std::size_t>(V);
  std::vector<float> z(rows * cols), st(3 * rows * static_cast<std::size_t>(shards)), loss(rows, 0.0f);
  std::vector<std::int32_t> target(rows);
  copy_to_host(z.data(), logits);
  copy_to_host(target.data(), targets);
  copy_to_host(st.data(), all_stats);
  for (std::size_t i = 0; i < rows; ++i) {
    float* row = z.data() + i * cols;
    if (target[i] < 0) {
      for (std::size_t j = 0; j < cols; ++j) row[j] = 0.0f;
      continue;
    }
    double M = -std::numeric_limits<double>::infinity(), zt = 0;
    for (std::size_t r = 0; r < static_cast<std::size_t>(shards); ++r) M = std::max<double>(M, st[(r * rows + i) * 3]);
    double S = 0;
    for (std::size_t r = 0; r < static_cast<std::size_t>(shards); ++r) {
      const float* s = st.data() + (r * rows + i) * 3;
      S += static_cast<double>(s[1]) * std::exp(static_cast<double>(s[0]) - M);
      zt += s[2];
    }
    loss[i] = static_cast<float>(std::log(S) + M - zt);
    const std::int64_t t = static_cast<std::int64_t>(target[i]) - first;
    for (std::size_t j = 0; j < cols; ++j) {
      const double p = std::exp(static_cast<double>(row[j]) - M) / S;
      row[j] = static_cast<float>((p - (static_cast<std::int64_t>(j) == t ? 1.0 : 0.0)) * dloss);
    }
  }
  copy_from_host(losses, loss.data());
  if (dlogits) copy_from_host(dlogits, z.data());
}

}  // namespace trainer
