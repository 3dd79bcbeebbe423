// Causal multi-head self-attention on packed qkv: attention_forward, attention_backward.
#pragma once
#include <cblas.h>

#include <cmath>
#include <cstdint>


namespace trainer::cpu {

// Each (batch, head) is independent: its products run through cblas on strided views of qkv
// (row stride 3C) and out (row stride C), with the softmax in between while the scores are
// still in cache. The full T x T products waste the masked half, but a blocked sgemm still
// beats a triangular scalar loop at these sizes. Heads are spread over OpenMP threads only
// when OpenBLAS is single-threaded: each head's products are then single-threaded and
// reentrant, and no OpenBLAS pool is nested inside OpenMP (which would oversubscribe).
inline bool heads_in_parallel(std::int64_t heads) {
  return heads > 1 && openblas_get_num_threads() == 1;
}

inline void softmax_causal_rows(float* s, int T) {
  for (int t = 0; t < T; ++t) {
    float* p = s + static_cast<std::int64_t>(t) * T;
    float mx = p[0];
    for (int j = 1; j <= t; ++j) mx = p[j] > mx ? p[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j <= t; ++j) {
      p[j] = std::exp(p[j] - mx);
      sum += p[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j <= t; ++j) p[j] *= inv;
    for (int j = t + 1; j < T; ++j) p[j] = 0.0f;
  }
}

// qkv [B,T,3C]; out [B,T,C]; att [B,NH,T,T] receives softmax probabilities, 0 above the diagonal.
inline void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C,
                              int NH) {
  const int hs = C / NH;
  const std::int64_t C3 = 3LL * C;
  const std::int64_t TT = static_cast<std::int64_t>(T) * T;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const std::int64_t heads = static_cast<std::int64_t>(B) * NH;
#pragma omp parallel for schedule(static) if (heads_in_parallel(heads))
  for (std::int64_t bh = 0; bh < heads; ++bh) {
    const std::int64_t b = bh / NH;
    const int h = static_cast<int>(bh % NH);
    const float* q = qkv + b * T * C3 + h * hs;
    const float* k = q + C;
    const float* v = q + 2 * C;
    float* p = att + bh * TT;
    float* o = out + b * T * C + h * hs;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, C3, k, C3, 0.0f,
                p, T);
    softmax_causal_rows(p, T);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, p, T, v, C3, 0.0f,
                o, C);
  }
}

// dqkv overwritten; datt is scratch [B,NH,T,T].
inline void attention_backward(float* dqkv, float* datt, const float* dout, const float* qkv,
                               const float* att, int B, int T, int C, int NH) {
  const int hs = C / NH;
  const std::int64_t C3 = 3LL * C;
  const std::int64_t TT = static_cast<std::int64_t>(T) * T;
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
    const float* p = att + bh * TT;
    float* ds = datt + bh * TT;
    const float* g = dout + b * T * C + h * hs;
    // dP = dO V^T and dV = P^T dO.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, g, C, v, C3, 0.0f,
                ds, T);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, p, T, g, C, 0.0f, dv,
                C3);
    // Softmax backward in place: dS = P * (dP - rowsum(P * dP)); zero where P is masked.
    for (int t = 0; t < T; ++t) {
      const float* pr = p + static_cast<std::int64_t>(t) * T;
      float* d = ds + static_cast<std::int64_t>(t) * T;
      float dot = 0.0f;
      for (int j = 0; j <= t; ++j) dot += pr[j] * d[j];
      for (int j = 0; j <= t; ++j) d[j] = pr[j] * (d[j] - dot);
      for (int j = t + 1; j < T; ++j) d[j] = 0.0f;
    }
    // dQ = scale * dS K and dK = scale * dS^T Q.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, ds, T, k, C3, 0.0f,
                dq, C3);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, ds, T, q, C3, 0.0f,
                dk, C3);
  }
}

}  // namespace trainer::cpu
