// Softmax cross-entropy over V classes: crossentropy_forward_backward.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.hpp"

namespace trainer::cpu {

// losses[n] = logsumexp(logits[n,:]) - logits[n,target]; when dlogits is not null,
// dlogits[n,:] = (softmax(logits[n,:]) - onehot(target)) * dloss. Rows with target < 0 get
// loss 0 and gradient 0. dlogits may alias logits: each row reads what it needs first.
inline void crossentropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                          const std::int32_t* targets, float dloss, int N,
                                          int V) {
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(N) * V >= kParallelMin)
  for (int n = 0; n < N; ++n) {
    const float* x = logits + static_cast<std::int64_t>(n) * V;
    float* d = dlogits ? dlogits + static_cast<std::int64_t>(n) * V : nullptr;
    const int target = targets[n];
    if (target < 0) {
      losses[n] = 0.0f;
      if (d) {
        for (int i = 0; i < V; ++i) d[i] = 0.0f;
      }
      continue;
    }
    float mx = x[0];
    for (int i = 1; i < V; ++i) mx = x[i] > mx ? x[i] : mx;
    // The normaliser sums V terms; double keeps it exact enough for large vocabularies.
    double sum = 0.0;
    for (int i = 0; i < V; ++i) sum += std::exp(static_cast<double>(x[i] - mx));
    const double log_sum = std::log(sum);
    losses[n] = static_cast<float>(log_sum - static_cast<double>(x[target] - mx));
    if (d) {
      const float inv = static_cast<float>(1.0 / sum);
      for (int i = 0; i < V; ++i) d[i] = std::exp(x[i] - mx) * inv * dloss;
      d[target] -= dloss;
    }
  }
}

}  // namespace trainer::cpu
