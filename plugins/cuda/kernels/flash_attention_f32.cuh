// Device code of the f32 flash attention (plain FFMA, no tensor cores), included only by
// flash_attention.cu: flash_forward_f32, flash_backward_dkdv_f32, flash_backward_dq_f32.
//
// Simpler than the bf16 kernels and kept exact to f32 rounding: each row (a query, or a key in
// the dK/dV kernel) belongs to kParts consecutive threads, each holding kChunk of the D
// (zero-padded) head dimensions in registers; dot products are summed over those threads
// with shuffles in a fixed pattern. Tiles of 32 keys (or queries) are staged in shared
// memory and read back 16 bytes at a time (one shared load per four FMAs: with 4-byte loads
// the kernels were bound by shared-load issue), each thread's chunk padded by 16 bytes so the
// kParts chunks of a row fall in different banks. Online softmax in the log2 domain as in
// the bf16 kernels.
#pragma once
#include <cstdint>

namespace trainer::gpu::flash {

constexpr int kF32Threads = 128;
constexpr int kRowTile = 32;  // keys (or queries) staged per step

template <int D>
struct F32 {
  static constexpr int kChunk = D < 32 ? D : 32;
  static constexpr int kParts = D / kChunk;
  static constexpr int kRows = kF32Threads / kParts;  // rows per block
  static constexpr int kPad = kChunk + 4;  // floats; keeps chunks 16-byte aligned
  static constexpr int kStride = kParts * kPad;  // floats per staged row
};

template <int D>
__device__ inline float part_sum(float v) {
#pragma unroll
  for (int o = 1; o < F32<D>::kParts; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Rows [row0, row0 + kRowTile) of one head into shared memory (zero past T and past hs).
template <int D>
__device__ inline void stage_rows(float* s, const float* g, std::int64_t ld, int row0, int T, int hs) {
  for (int idx = threadIdx.x; idx < kRowTile * D; idx += kF32Threads) {
    const int r = idx / D, d = idx % D;
    const int t = row0 + r;
    s[r * F32<D>::kStride + (d / F32<D>::kChunk) * F32<D>::kPad + d % F32<D>::kChunk] =
        (t < T && d < hs) ? g[static_cast<std::int64_t>(t) * ld + d] : 0.0f;
  }
}

// This thread's chunk of row t of one head, times mul (zero past T and past hs).
template <int D>
__device__ inline void load_chunk(float (&x)[F32<D>::kChunk], const float* g, std::int64_t ld, int t, int part, int T,
                                  int hs, float mul) {
#pragma unroll
  for (int i = 0; i < F32<D>::kChunk; ++i) {
    const int d = part * F32<D>::kChunk + i;
    x[i] = (t < T && d < hs) ? g[static_cast<std::int64_t>(t) * ld + d] * mul : 0.0f;
  }
}

template <int D>
__device__ inline void store_chunk(float* g, std::int64_t ld, const float (&x)[F32<D>::kChunk], int t, int part,
                                   int T, int hs, float mul) {
  if (t >= T) return;
#pragma unroll
  for (int i = 0; i < F32<D>::kChunk; ++i) {
    const int d = part * F32<D>::kChunk + i;
    if (d < hs) g[static_cast<std::int64_t>(t) * ld + d] = x[i] * mul;
  }
}

// x . s over this thread's chunk, summed over the row's threads; s is a 16-byte aligned chunk.
template <int D>
__device__ inline float dot_chunk(const float (&x)[F32<D>::kChunk], const float* s) {
  const float4* s4 = reinterpret_cast<const float4*>(s);
  float acc = 0.0f;
#pragma unroll
  for (int i = 0; i < F32<D>::kChunk / 4; ++i) {
    const float4 v = s4[i];
    acc = fmaf(x[4 * i], v.x, acc);
    acc = fmaf(x[4 * i + 1], v.y, acc);
    acc = fmaf(x[4 * i + 2], v.z, acc);
    acc = fmaf(x[4 * i + 3], v.w, acc);
  }
  return part_sum<D>(acc);
}

// y += a * s over this thread's chunk; s is a 16-byte aligned chunk.
template <int D>
__device__ inline void axpy_chunk(float (&y)[F32<D>::kChunk], float a, const float* s) {
  const float4* s4 = reinterpret_cast<const float4*>(s);
#pragma unroll
  for (int i = 0; i < F32<D>::kChunk / 4; ++i) {
    const float4 v = s4[i];
    y[4 * i] = fmaf(a, v.x, y[4 * i]);
    y[4 * i + 1] = fmaf(a, v.y, y[4 * i + 1]);
    y[4 * i + 2] = fmaf(a, v.z, y[4 * i + 2]);
    y[4 * i + 3] = fmaf(a, v.w, y[4 * i + 3]);
  }
}

// grid (query blocks, B*NH), heaviest first.
template <int D>
__global__ void __launch_bounds__(kF32Threads) flash_forward_f32(float* out, float* lse, const float* qkv, int T, int C,
                                                                  int NH, int hs, float scale_log2) {
  using G = F32<D>;
  __shared__ __align__(16) float sK[kRowTile * G::kStride];
  __shared__ __align__(16) float sV[kRowTile * G::kStride];
  const int r0 = (static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x)) * G::kRows;
  const int b = blockIdx.y / NH, h = blockIdx.y % NH;
  const int row = r0 + threadIdx.x / G::kParts, part = threadIdx.x % G::kParts;
  const std::int64_t ld = 3LL * C;
  const float* q = qkv + static_cast<std::int64_t>(b) * T * ld + h * hs;
  float qr[G::kChunk], o[G::kChunk] = {};
  load_chunk<D>(qr, q, ld, row, part, T, hs, scale_log2);
  float m = -INFINITY, l = 0.0f;
  const int key_end = min(T, r0 + G::kRows);
  for (int kb = 0; kb < key_end; kb += kRowTile) {
    __syncthreads();
    stage_rows<D>(sK, q + C, ld, kb, T, hs);
    stage_rows<D>(sV, q + 2 * C, ld, kb, T, hs);
    __syncthreads();
    float sc[kRowTile];
    float mx = m;
#pragma unroll
    for (int j = 0; j < kRowTile; ++j) {
      const float x = dot_chunk<D>(qr, sK + j * G::kStride + part * G::kPad);
      sc[j] = kb + j <= row ? x : -INFINITY;  // key 0 is in the first tile: mx finite from then on
      mx = fmaxf(mx, sc[j]);
    }
    const float corr = exp2f(m - mx);
    m = mx;
    l *= corr;
#pragma unroll
    for (int i = 0; i < G::kChunk; ++i) o[i] *= corr;
#pragma unroll
    for (int j = 0; j < kRowTile; ++j) {
      const float p = exp2f(sc[j] - m);
      l += p;
      axpy_chunk<D>(o, p, sV + j * G::kStride + part * G::kPad);
    }
  }
  store_chunk<D>(out + static_cast<std::int64_t>(b) * T * C + h * hs, C, o, row, part, T, hs, 1.0f / l);
  if (part == 0 && row < T) {
    constexpr float kLn2 = 0.69314718055994531f;
    lse[static_cast<std::int64_t>(blockIdx.y) * T + row] = (m + log2f(l)) * kLn2;
  }
}

// dK and dV of one block of keys (grid (key blocks, B*NH)); each thread group owns a key row.
template <int D>
__global__ void __launch_bounds__(kF32Threads) flash_backward_dkdv_f32(float* dqkv, const float* dout, const float* qkv,
                                                                        const float* lse, const float* delta, int T,
                                                                        int C, int NH, int hs, float scale_log2,
                                                                        float scale) {
  using G = F32<D>;
  __shared__ __align__(16) float sQ[kRowTile * G::kStride];
  __shared__ __align__(16) float sG[kRowTile * G::kStride];
  __shared__ float sL[kRowTile], sD[kRowTile];
  const int k0 = blockIdx.x * G::kRows;
  const int b = blockIdx.y / NH, h = blockIdx.y % NH;
  const int key = k0 + threadIdx.x / G::kParts, part = threadIdx.x % G::kParts;
  const std::int64_t ld = 3LL * C;
  const float* q = qkv + static_cast<std::int64_t>(b) * T * ld + h * hs;
  const float* g = dout + static_cast<std::int64_t>(b) * T * C + h * hs;
  const float* lse_bh = lse + static_cast<std::int64_t>(blockIdx.y) * T;
  const float* delta_bh = delta + static_cast<std::int64_t>(blockIdx.y) * T;
  float kr[G::kChunk], vr[G::kChunk], dk[G::kChunk] = {}, dv[G::kChunk] = {};
  load_chunk<D>(kr, q + C, ld, key, part, T, hs, scale_log2);
  load_chunk<D>(vr, q + 2 * C, ld, key, part, T, hs, 1.0f);
  for (int qb = k0 / kRowTile * kRowTile; qb < T; qb += kRowTile) {
    __syncthreads();
    stage_rows<D>(sQ, q, ld, qb, T, hs);
    stage_rows<D>(sG, g, C, qb, T, hs);
    if (threadIdx.x < kRowTile) {
      const int t = qb + threadIdx.x;
      constexpr float kLog2e = 1.4426950408889634f;
      sL[threadIdx.x] = t < T ? lse_bh[t] * kLog2e : 0.0f;
      sD[threadIdx.x] = t < T ? delta_bh[t] : 0.0f;
    }
    __syncthreads();
#pragma unroll 4
    for (int j = 0; j < kRowTile; ++j) {
      const float* qrow = sQ + j * G::kStride + part * G::kPad;
      const float* grow = sG + j * G::kStride + part * G::kPad;
      const float s = dot_chunk<D>(kr, qrow);
      const float dp = dot_chunk<D>(vr, grow);
      const int query = qb + j;
      const float p = (query >= key && query < T) ? exp2f(s - sL[j]) : 0.0f;
      const float ds = p * (dp - sD[j]);
      axpy_chunk<D>(dv, p, grow);
      axpy_chunk<D>(dk, ds, qrow);
    }
  }
  float* d = dqkv + static_cast<std::int64_t>(b) * T * ld + h * hs;
  store_chunk<D>(d + C, ld, dk, key, part, T, hs, scale);
  store_chunk<D>(d + 2 * C, ld, dv, key, part, T, hs, 1.0f);
}

// dQ of one block of queries (grid (query blocks, B*NH), heaviest first).
template <int D>
__global__ void __launch_bounds__(kF32Threads) flash_backward_dq_f32(float* dqkv, const float* dout, const float* qkv,
                                                                      const float* lse, const float* delta, int T,
                                                                      int C, int NH, int hs, float scale_log2,
                                                                      float scale) {
  using G = F32<D>;
  __shared__ __align__(16) float sK[kRowTile * G::kStride];
  __shared__ __align__(16) float sV[kRowTile * G::kStride];
  const int r0 = (static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x)) * G::kRows;
  const int b = blockIdx.y / NH, h = blockIdx.y % NH;
  const int row = r0 + threadIdx.x / G::kParts, part = threadIdx.x % G::kParts;
  const std::int64_t ld = 3LL * C;
  const float* q = qkv + static_cast<std::int64_t>(b) * T * ld + h * hs;
  float qr[G::kChunk], gr[G::kChunk], dq[G::kChunk] = {};
  load_chunk<D>(qr, q, ld, row, part, T, hs, scale_log2);
  load_chunk<D>(gr, dout + static_cast<std::int64_t>(b) * T * C + h * hs, C, row, part, T, hs, 1.0f);
  constexpr float kLog2e = 1.4426950408889634f;
  const std::int64_t at = static_cast<std::int64_t>(blockIdx.y) * T + row;
  const float lse2 = row < T ? lse[at] * kLog2e : 0.0f;
  const float dl = row < T ? delta[at] : 0.0f;
  const int key_end = min(T, r0 + G::kRows);
  for (int kb = 0; kb < key_end; kb += kRowTile) {
    __syncthreads();
    stage_rows<D>(sK, q + C, ld, kb, T, hs);
    stage_rows<D>(sV, q + 2 * C, ld, kb, T, hs);
    __syncthreads();
#pragma unroll 4
    for (int j = 0; j < kRowTile; ++j) {
      const float* krow = sK + j * G::kStride + part * G::kPad;
      const float s = dot_chunk<D>(qr, krow);
      const float dp = dot_chunk<D>(gr, sV + j * G::kStride + part * G::kPad);
      const float p = (kb + j <= row && row < T) ? exp2f(s - lse2) : 0.0f;
      const float ds = p * (dp - dl);
      axpy_chunk<D>(dq, ds, krow);
    }
  }
  store_chunk<D>(dqkv + static_cast<std::int64_t>(b) * T * ld + h * hs, ld, dq, row, part, T, hs, scale);
}

}  // namespace trainer::gpu::flash
