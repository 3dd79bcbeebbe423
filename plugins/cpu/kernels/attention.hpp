// Causal multi-head self-attention on packed qkv, fused: attention_forward, attention_backward.
#pragma once
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace trainer::cpu {

// Each (batch, head) is independent. Its queries are taken in blocks of kRows: the block's
// scores against the keys it may see (0 .. last query of the block) are one cblas product
// into a kRows x T scratch, so at most kRows x T scores exist at a time and nothing T x T is
// kept. Forward keeps only each row's log-sum-exp; backward remakes the probabilities from
// it, block by block, in a fixed order (deterministic). Heads are spread over OpenMP threads
// only when OpenBLAS is single-threaded: each head's products are then single-threaded and
// reentrant, and no OpenBLAS pool is nested inside OpenMP (which would oversubscribe).
constexpr int kAttentionRows = 64;

inline bool heads_in_parallel(std::int64_t heads) {
  return heads > 1 && openblas_get_num_threads() == 1;
}

// qkv [B,T,3C]; out [B,T,C]; lse [B,NH,T] = log sum_j<=t exp(s_tj), s = q.k / sqrt(hs).
inline void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C,
                              int NH) {
  const int hs = C / NH;
  const std::int64_t C3 = 3LL * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const std::int64_t heads = static_cast<std::int64_t>(B) * NH;
#pragma omp parallel for schedule(static) if (heads_in_parallel(heads))
  for (std::int64_t bh = 0; bh < heads; ++bh) {
    const std::int64_t b = bh / NH;
    const int h = static_cast<int>(bh % NH);
    const float* q = qkv + b * T * C3 + h * hs;
    const float* k = q + C;
    const float* v = q + 2 * C;
    float* o = out + b * T * C + h * hs;
    float* l = lse + bh * T;
    std::vector<float> s(static_cast<std::size_t>(kAttentionRows) * T);
    for (int t0 = 0; t0 < T; t0 += kAttentionRows) {
      const int rows = std::min(kAttentionRows, T - t0);
      const int keys = t0 + rows;  // the last query of the block sees keys 0 .. keys-1
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, hs, scale, q + t0 * C3,
                  C3, k, C3, 0.0f, s.data(), keys);
      for (int r = 0; r < rows; ++r) {
        const int t = t0 + r;
        float* p = s.data() + static_cast<std::int64_t>(r) * keys;
        float mx = p[0];
        for (int j = 1; j <= t; ++j) mx = p[j] > mx ? p[j] : mx;
        float sum = 0.0f;
        for (int j = 0; j <= t; ++j) {
          p[j] = std::exp(p[j] - mx);
          sum += p[j];
        }
        const float inv = 1.0f / sum;
        for (int j = 0; j <= t; ++j) p[j] *= inv;
        for (int j = t + 1; j < keys; ++j) p[j] = 0.0f;
        l[t] = mx + std::log(sum);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, keys, 1.0f, s.data(),
                  keys, v, C3, 0.0f, o + t0 * C, C);
    }
  }
}

// dqkv overwritten. out and lse are attention_forward's for this qkv. With P = exp(s - lse):
// dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)), dQ = scale dS K, dK = scale dS^T Q.
inline void attention_backward(float* dqkv, const float* dout, const float* qkv,
                               const float* out, const float* lse, int B, int T, int C,
                               int NH) {
  const int hs = C / NH;
  const std::int64_t C3 = 3LL * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const std::int64_t heads = static_cast<std::int64_t>(B) * NH;
#pragma omp parallel for schedule(static) if (heads_in_parallel(heads))
  for (std::int64_t bh = 0; bh < heads; ++bh) {
    const std::int64_t b = bh / NH;
    const int h = static_cast<int>(bh % NH);
    const float* q = qkv + b * T * C3 + h * hs;
    const float* k = q + C;
    const float* v = q + 2 * C;
    float* dq = dqkv + b * T * C3 + h * hs;
    float* dk = dq + C;
    float* dv = dq + 2 * C;
    const float* o = out + b * T * C + h * hs;
    const float* g = dout + b * T * C + h * hs;
    const float* l = lse + bh * T;
    // dK and dV accumulate over the query blocks: start them at zero.
    for (int t = 0; t < T; ++t) {
      std::fill(dk + t * C3, dk + t * C3 + hs, 0.0f);
      std::fill(dv + t * C3, dv + t * C3 + hs, 0.0f);
    }
    std::vector<float> p(static_cast<std::size_t>(kAttentionRows) * T);
    std::vector<float> dp(p.size());
    for (int t0 = 0; t0 < T; t0 += kAttentionRows) {
      const int rows = std::min(kAttentionRows, T - t0);
      const int keys = t0 + rows;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, hs, scale, q + t0 * C3,
                  C3, k, C3, 0.0f, p.data(), keys);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, hs, 1.0f, g + t0 * C, C,
                  v, C3, 0.0f, dp.data(), keys);
      for (int r = 0; r < rows; ++r) {
        const int t = t0 + r;
        float* pr = p.data() + static_cast<std::int64_t>(r) * keys;
        float* d = dp.data() + static_cast<std::int64_t>(r) * keys;
        float delta = 0.0f;  // rowsum(dO * O) = rowsum(P * dP)
        for (int i = 0; i < hs; ++i) delta += g[t * C + i] * o[t * C + i];
        for (int j = 0; j <= t; ++j) {
          pr[j] = std::exp(pr[j] - l[t]);
          d[j] = pr[j] * (d[j] - delta);
        }
        for (int j = t + 1; j < keys; ++j) pr[j] = d[j] = 0.0f;
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, keys, hs, rows, 1.0f, p.data(), keys,
                  g + t0 * C, C, 1.0f, dv, C3);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, keys, scale, dp.data(),
                  keys, k, C3, 0.0f, dq + t0 * C3, C3);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, keys, hs, rows, scale, dp.data(),
                  keys, q + t0 * C3, C3, 1.0f, dk, C3);
    }
  }
}

}  // namespace trainer::cpu
