// Optimizer step: adamw_update (bias-corrected AdamW, decoupled weight decay).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.hpp"

namespace trainer::cpu {

// m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  mhat = m/(1-b1^t);  vhat = v/(1-b2^t);
// p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p).  t is 1-based.
inline void adamw_update(float* param, const float* grad, float* m, float* v, std::int64_t N,
                         float lr, float beta1, float beta2, float eps, float weight_decay,
                         std::int64_t t) {
  // The corrections are formed in double: b^t for large t loses digits in float.
  const float c1 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t)));
  const float c2 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t)));
#pragma omp parallel for simd schedule(static) if (N >= kParallelMin)
  for (std::int64_t i = 0; i < N; ++i) {
    const float g = grad[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / c1;
    const float vhat = vi / c2;
    param[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + weight_decay * param[i]);
  }
}

}  // namespace trainer::cpu
