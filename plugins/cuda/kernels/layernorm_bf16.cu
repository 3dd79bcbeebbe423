// bf16 layer normalisation kernels: forward (one warp per row, two-pass variance in f32; 16-byte
// loads with the row in registers for C a multiple of 8 up to 1024),
// backward (a fused kernel with 16-byte loads for C a multiple of 8 up to 1024: dinp plus
// per-block dweight/dbias partial rows; otherwise one warp per row for dinp and fixed row
// chunks for dweight/dbias; both deterministic), and bf16 column sums (bias gradients).
#include "kernels/bf16_common.cuh"
#include "kernels/common.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/layernorm_bf16.cuh"

#include <cstdint>

namespace trainer::gpu {
namespace {

constexpr int kRowsPerBlock = kThreads / 32;

__global__ void forward_kernel(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight,
                               const bf16* bias, std::int64_t N, int C) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const bf16* x = inp + row * C;
  float sum = 0.0f;
  for (int c = lane; c < C; c += 32) sum += load_f(x[c]);
  const float m = warp_sum(sum) / static_cast<float>(C);
  float var = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float d = load_f(x[c]) - m;
    var += d * d;
  }
  var = warp_sum(var) / static_cast<float>(C);
  const float s = 1.0f / sqrtf(var + kLayerNormEps);
  bf16* o = out + row * C;
  for (int c = lane; c < C; c += 32) {
    o[c] = __float2bfloat16_rn((load_f(x[c]) - m) * s * load_f(weight[c]) + load_f(bias[c]));
  }
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

__global__ void dinp_kernel(bf16* dinp, const bf16* dout, const bf16* inp, const bf16* weight, const float* mean,
                            const float* rstd, std::int64_t N, int C) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const bf16* x = inp + row * C;
  const bf16* g = dout + row * C;
  const float m = mean[row];
  const float s = rstd[row];
  float sum_dn = 0.0f, sum_dn_xhat = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float dn = load_f(g[c]) * load_f(weight[c]);
    sum_dn += dn;
    sum_dn_xhat += dn * (load_f(x[c]) - m) * s;
  }
  sum_dn = warp_sum(sum_dn) / static_cast<float>(C);
  sum_dn_xhat = warp_sum(sum_dn_xhat) / static_cast<float>(C);
  bf16* di = dinp + row * C;
  for (int c = lane; c < C; c += 32) {
    const float xhat = (load_f(x[c]) - m) * s;
    const float d = (load_f(g[c]) * load_f(weight[c]) - sum_dn - xhat * sum_dn_xhat) * s;
    di[c] = __float2bfloat16_rn(load_f(di[c]) + d);
  }
}

__global__ void param_partials_kernel(float* pw, float* pb, const bf16* dout, const bf16* inp, const float* mean,
                                      const float* rstd, std::int64_t N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const std::int64_t r0 = blockIdx.y * kBf16ColumnChunk;
  const std::int64_t r1 = r0 + kBf16ColumnChunk < N ? r0 + kBf16ColumnChunk : N;
  float aw = 0.0f, ab = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r) {
    const float g = load_f(dout[r * C + c]);
    aw += g * (load_f(inp[r * C + c]) - mean[r]) * rstd[r];
    ab += g;
  }
  pw[blockIdx.y * static_cast<std::int64_t>(C) + c] = aw;
  pb[blockIdx.y * static_cast<std::int64_t>(C) + c] = ab;
}

__global__ void column_partials_kernel(float* partials, const bf16* src, std::int64_t rows, int cols) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const std::int64_t r0 = blockIdx.y * kBf16ColumnChunk;
  const std::int64_t r1 = r0 + kBf16ColumnChunk < rows ? r0 + kBf16ColumnChunk : rows;
  float acc = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r) acc += load_f(src[r * cols + c]);
  partials[blockIdx.y * static_cast<std::int64_t>(cols) + c] = acc;
}

// Adds the rows of partials[rows, cols] into dst: a block takes 32 columns; warp w adds rows
// w, w+8, ... (each read a coalesced 128-byte line), then warp 0 adds the 8 warp sums in warp
// order. Fixed order, so the same bits every run.
__global__ void finalize_kernel(float* dst, const float* partials, std::int64_t rows, int cols) {
  __shared__ float warp_sums[kRowsPerBlock][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::int64_t c = blockIdx.x * 32LL + lane;
  float acc = 0.0f;
  if (c < cols) {
#pragma unroll 4
    for (std::int64_t k = warp; k < rows; k += kRowsPerBlock) acc += partials[k * cols + c];
  }
  warp_sums[warp][lane] = acc;
  __syncthreads();
  if (warp == 0 && c < cols) {
    float total = 0.0f;
    for (int w = 0; w < kRowsPerBlock; ++w) total += warp_sums[w][lane];
    dst[c] += total;
  }
}

cudaError_t finalize(float* dst, const float* partials, std::int64_t chunks, int cols, cudaStream_t s) {
  finalize_kernel<<<static_cast<unsigned>((cols + 31) / 32), kThreads, 0, s>>>(
      dst, partials, chunks, cols);
  return cudaGetLastError();
}

// Backward, fast path (C a multiple of 8, at most 256 * kMaxBwdVecs, 16-byte aligned rows):
// one fused kernel. Each warp takes rows blockIdx*8 + warp, then every gridDim*8-th; lane l
// holds the 8-column vectors l, l+32, ... of its row in registers, so x and dout are read
// once; it writes dinp and keeps its dweight/dbias sums in registers. The block's 8 warps are
// then added in warp order in shared memory and written as one partial row per block; a
// second kernel adds the partial rows in fixed order. No float atomics: same bits every run.
constexpr int kMaxBwdVecs = 4;         // C <= 1024
constexpr std::int64_t kMaxBwdBlocks = 264;  // 2 resident blocks on each of 132 SMs

__device__ __forceinline__ void unpack8(const uint4& v, float* f) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 p = __bfloat1622float2(h[j]);
    f[2 * j] = p.x;
    f[2 * j + 1] = p.y;
  }
}

__device__ __forceinline__ uint4 pack8(const float* f) {
  uint4 v;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&v);
#pragma unroll
  for (int j = 0; j < 4; ++j) h[j] = __floats2bfloat162_rn(f[2 * j], f[2 * j + 1]);
  return v;
}

// dinp's current values are prefetched with x and dout for rows up to 768 wide; at 1024 the
// prefetch needs more registers than two resident blocks per SM allow, and one block per SM
// measured slower (GPT-2 350M: 191,400 against 193,500 tokens/s), so those load dinp after
// the reductions.
template <int kVecs>
constexpr bool kPrefetchDinp = kVecs <= 3;

template <int kVecs>
__global__ void __launch_bounds__(kThreads, 2)
    backward_fused_kernel(bf16* dinp, float* pw, float* pb, const bf16* dout, const bf16* inp, const bf16* weight,
                          const float* mean, const float* rstd, std::int64_t N, int C) {
  extern __shared__ float block_acc[];  // [2][C]: dweight, dbias
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float aw[kVecs][8], ab[kVecs][8];
#pragma unroll
  for (int k = 0; k < kVecs; ++k)
#pragma unroll
    for (int j = 0; j < 8; ++j) aw[k][j] = ab[k][j] = 0.0f;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kRowsPerBlock;
  for (std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + warp; row < N; row += stride) {
    const bf16* x = inp + row * C;
    const bf16* g = dout + row * C;
    bf16* di = dinp + row * C;
    // (kPrefetchDinp) dinp's current values are loaded with x and dout, before the row's
    // reductions: three independent loads in flight instead of a dependent one after them.
    uint4 xv[kVecs], gv[kVecs], dv[kVecs];
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int c = (k * 32 + lane) * 8;
      if (c < C) {
        xv[k] = *reinterpret_cast<const uint4*>(x + c);
        gv[k] = *reinterpret_cast<const uint4*>(g + c);
        if (kPrefetchDinp<kVecs>) dv[k] = *reinterpret_cast<const uint4*>(di + c);
      }
    }
    const float m = mean[row], s = rstd[row];
    float sum_dn = 0.0f, sum_dn_xhat = 0.0f;
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int c = (k * 32 + lane) * 8;
      if (c < C) {
        float xf[8], gf[8], wf[8];
        unpack8(xv[k], xf);
        unpack8(gv[k], gf);
        unpack8(__ldg(reinterpret_cast<const uint4*>(weight + c)), wf);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const float xhat = (xf[j] - m) * s;
          const float dn = gf[j] * wf[j];
          sum_dn += dn;
          sum_dn_xhat += dn * xhat;
          aw[k][j] += gf[j] * xhat;
          ab[k][j] += gf[j];
        }
      }
    }
    sum_dn = warp_sum(sum_dn) / static_cast<float>(C);
    sum_dn_xhat = warp_sum(sum_dn_xhat) / static_cast<float>(C);
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int c = (k * 32 + lane) * 8;
      if (c < C) {
        float xf[8], gf[8], wf[8], df[8];
        unpack8(xv[k], xf);
        unpack8(gv[k], gf);
        unpack8(__ldg(reinterpret_cast<const uint4*>(weight + c)), wf);
        unpack8(kPrefetchDinp<kVecs> ? dv[k] : *reinterpret_cast<const uint4*>(di + c), df);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const float xhat = (xf[j] - m) * s;
          df[j] += (gf[j] * wf[j] - sum_dn - xhat * sum_dn_xhat) * s;
        }
        *reinterpret_cast<uint4*>(di + c) = pack8(df);
      }
    }
  }
  // Warps add their sums into shared memory one after another, in warp order.
  for (int w = 0; w < kRowsPerBlock; ++w) {
    if (warp == w) {
#pragma unroll
      for (int k = 0; k < kVecs; ++k) {
        const int c = (k * 32 + lane) * 8;
        if (c < C) {
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            block_acc[c + j] = w == 0 ? aw[k][j] : block_acc[c + j] + aw[k][j];
            block_acc[C + c + j] = w == 0 ? ab[k][j] : block_acc[C + c + j] + ab[k][j];
          }
        }
      }
    }
    __syncthreads();
  }
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    pw[blockIdx.x * static_cast<std::int64_t>(C) + c] = block_acc[c];
    pb[blockIdx.x * static_cast<std::int64_t>(C) + c] = block_acc[C + c];
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

// Forward, fast path (the backward's conditions): one warp per row, the row read once as
// 16-byte vectors into registers (lane l holds vectors l, l+32, ...), mean and variance (two
// passes) from the registers, 16-byte stores. The general kernel reads the row three times,
// two bytes per lane.
template <int kVecs>
__global__ void forward_vec_kernel(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight,
                                   const bf16* bias, std::int64_t N, int C) {
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const bf16* x = inp + row * C;
  float xf[kVecs][8];
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int c = (k * 32 + lane) * 8;
    if (c < C) {
      unpack8(*reinterpret_cast<const uint4*>(x + c), xf[k]);
#pragma unroll
      for (int j = 0; j < 8; ++j) sum += xf[k][j];
    }
  }
  const float m = warp_sum(sum) / static_cast<float>(C);
  float var = 0.0f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    if ((k * 32 + lane) * 8 < C) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float d = xf[k][j] - m;
        var += d * d;
      }
    }
  }
  var = warp_sum(var) / static_cast<float>(C);
  const float s = 1.0f / sqrtf(var + kLayerNormEps);
  bf16* o = out + row * C;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int c = (k * 32 + lane) * 8;
    if (c < C) {
      float wf[8], bf[8], of[8];
      unpack8(__ldg(reinterpret_cast<const uint4*>(weight + c)), wf);
      unpack8(__ldg(reinterpret_cast<const uint4*>(bias + c)), bf);
#pragma unroll
      for (int j = 0; j < 8; ++j) of[j] = (xf[k][j] - m) * s * wf[j] + bf[j];
      *reinterpret_cast<uint4*>(o + c) = pack8(of);
    }
  }
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

template <int kVecs>
cudaError_t launch_backward_fused(bf16* dinp, float* pw, float* pb, const bf16* dout, const bf16* inp,
                                  const bf16* weight, const float* mean, const float* rstd, std::int64_t N, int C,
                                  unsigned blocks, cudaStream_t s) {
  backward_fused_kernel<kVecs><<<blocks, kThreads, 2 * C * sizeof(float), s>>>(dinp, pw, pb, dout, inp, weight, mean,
                                                                              rstd, N, C);
  return cudaGetLastError();
}

unsigned row_blocks(std::int64_t N) { return static_cast<unsigned>((N + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

cudaError_t layernorm_forward_bf16(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight,
                                   const bf16* bias, std::int64_t N, int C, cudaStream_t s) {
  const int vecs = (C + 255) / 256;
  const unsigned blocks = row_blocks(N);
  if (C % 8 == 0 && vecs <= kMaxBwdVecs && aligned16(out) && aligned16(inp) && aligned16(weight) && aligned16(bias)) {
    switch (vecs) {
      case 1: forward_vec_kernel<1><<<blocks, kThreads, 0, s>>>(out, mean, rstd, inp, weight, bias, N, C); break;
      case 2: forward_vec_kernel<2><<<blocks, kThreads, 0, s>>>(out, mean, rstd, inp, weight, bias, N, C); break;
      case 3: forward_vec_kernel<3><<<blocks, kThreads, 0, s>>>(out, mean, rstd, inp, weight, bias, N, C); break;
      default: forward_vec_kernel<4><<<blocks, kThreads, 0, s>>>(out, mean, rstd, inp, weight, bias, N, C); break;
    }
    return cudaGetLastError();
  }
  forward_kernel<<<blocks, kThreads, 0, s>>>(out, mean, rstd, inp, weight, bias, N, C);
  return cudaGetLastError();
}

cudaError_t layernorm_backward_bf16(bf16* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp,
                                    const bf16* weight, const float* mean, const float* rstd, std::int64_t N, int C,
                                    float* scratch, cudaStream_t s) {
  const std::int64_t chunks = bf16_column_chunks(N);
  const int vecs = (C + 255) / 256;
  if (C % 8 == 0 && vecs <= kMaxBwdVecs && aligned16(dinp) && aligned16(dout) && aligned16(inp) &&
      aligned16(weight)) {
    // At most one block per 32 rows, so the partials fit the scratch the caller sized for
    // bf16_column_chunks(N) rows.
    const std::int64_t blocks = chunks < kMaxBwdBlocks ? chunks : kMaxBwdBlocks;
    float* pw = scratch;
    float* pb = scratch + blocks * C;
    const unsigned b = static_cast<unsigned>(blocks);
    cudaError_t e = vecs == 1   ? launch_backward_fused<1>(dinp, pw, pb, dout, inp, weight, mean, rstd, N, C, b, s)
                    : vecs == 2 ? launch_backward_fused<2>(dinp, pw, pb, dout, inp, weight, mean, rstd, N, C, b, s)
                    : vecs == 3 ? launch_backward_fused<3>(dinp, pw, pb, dout, inp, weight, mean, rstd, N, C, b, s)
                                : launch_backward_fused<4>(dinp, pw, pb, dout, inp, weight, mean, rstd, N, C, b, s);
    if (e != cudaSuccess) return e;
    e = finalize(dweight, pw, blocks, C, s);
    if (e != cudaSuccess) return e;
    return finalize(dbias, pb, blocks, C, s);
  }
  // General path: one warp per row for dinp, fixed row chunks for dweight/dbias.
  dinp_kernel<<<row_blocks(N), kThreads, 0, s>>>(dinp, dout, inp, weight, mean, rstd, N, C);
  float* pw = scratch;
  float* pb = scratch + chunks * C;
  const dim3 grid((C + kThreads - 1) / kThreads, static_cast<unsigned>(chunks));
  param_partials_kernel<<<grid, kThreads, 0, s>>>(pw, pb, dout, inp, mean, rstd, N, C);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  e = finalize(dweight, pw, chunks, C, s);
  if (e != cudaSuccess) return e;
  return finalize(dbias, pb, chunks, C, s);
}

cudaError_t column_sums_bf16(float* dst, float* partials, const bf16* src, std::int64_t rows, int cols,
                             cudaStream_t s) {
  const std::int64_t chunks = bf16_column_chunks(rows);
  const dim3 grid((cols + kThreads - 1) / kThreads, static_cast<unsigned>(chunks));
  column_partials_kernel<<<grid, kThreads, 0, s>>>(partials, src, rows, cols);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  return finalize(dst, partials, chunks, cols, s);
}

}  // namespace trainer::gpu
