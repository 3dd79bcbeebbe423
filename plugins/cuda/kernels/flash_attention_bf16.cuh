// Device code of the bf16 flash attention (tensor cores, mma.sync m16n8k16, f32 accumulation),
// included only by flash_attention.cu: flash_forward_bf16, flash_backward_dkdv_bf16,
// flash_backward_dq_bf16 and their shared-memory sizes.
//
// A block is W warps; each warp owns 16*M rows (M m-tiles of 16) of the block's tile of
// 16*M*W queries (forward, dQ) or keys (dK/dV), and the block walks the other side in tiles of
// 64, taken N rows at a time (N = 64 or 32: fewer live registers in the backward). With M = 2
// each B fragment read from shared memory feeds two products instead of one; at M = 1 the
// kernels were bound by ldmatrix traffic (one 16x8x16 product per 256 bytes read).
// Tiles are copied global -> shared with cp.async (16-byte pieces, zero-filled past T and
// past the head size), two stages deep so the next tile's copy overlaps this tile's math.
// Shared rows are padded by 16 bytes, which makes every ldmatrix conflict-free. Operand
// fragments come from ldmatrix (.trans where the tile is stored k-major for the product),
// and a product's f32 accumulator fragment is re-packed into bf16 as the A operand of the
// next product (P of S = QK^T feeds P V) without touching shared memory.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace trainer::gpu::flash {

using bf16 = __nv_bfloat16;

constexpr int kTile = 64;  // rows of the tiles a block walks over (keys, or queries for dK/dV)
constexpr unsigned kFull = 0xffffffffu;

template <int D>
struct Tile {
  static constexpr int kStride = D + 8;  // bf16 per shared row: +16 bytes, conflict-free ldmatrix
  static constexpr int kElems = kTile * kStride;  // a 64-row tile
};

__device__ inline unsigned smem_u32(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }

__device__ inline void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ inline void ldsm_x4(unsigned (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ inline void ldsm_x4_trans(unsigned (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}

// c += a (16x16, row) * b (16x8, col)
__device__ inline void mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x by the special-function unit alone (ex2.approx, flush-to-zero: 2^-inf = 0, rel. error
// ~2^-22, far below bf16's 2^-8): exp2f adds range handling around it that costs issue slots
// in the softmax, the part of the loop that is not a tensor-core product.
__device__ inline float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ inline unsigned pack(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned*>(&v);
}

// Rows [row0, row0 + ROWS) of one head: g points at row 0, column 0 of the head in a matrix of
// row stride ld; columns >= hs and rows >= T are zero-filled. THREADS threads take part.
template <int D, int ROWS, int THREADS>
__device__ inline void load_tile(bf16* s, const bf16* g, std::int64_t ld, int row0, int T, int hs) {
  constexpr int kPieces = ROWS * D / 8;
  for (int c = threadIdx.x; c < kPieces; c += THREADS) {
    const int r = c / (D / 8), col = (c % (D / 8)) * 8;
    const bool valid = row0 + r < T && col < hs;
    const bf16* src = valid ? g + static_cast<std::int64_t>(row0 + r) * ld + col : g;
    cp_async16(s + r * Tile<D>::kStride + col, src, valid);
  }
}

// A fragment (16 x 16) of rows row0.. and columns kk*16.. of a row-major tile.
template <int D>
__device__ inline void frag_a(unsigned (&a)[4], const bf16* s, int row0, int kk, int lane) {
  const int r = row0 + (lane & 7) + ((lane >> 3) & 1) * 8;
  ldsm_x4(a, s + r * Tile<D>::kStride + kk * 16 + (lane >> 4) * 8);
}

// B fragments of two n-tiles (n0.., n0+8..) over k = kk*16.., from a tile stored [n][k]:
// b[0], b[1] for the first n-tile, b[2], b[3] for the second.
template <int D>
__device__ inline void frag_b_nk(unsigned (&b)[4], const bf16* s, int n0, int kk, int lane) {
  const int r = n0 + (lane & 7) + (lane >> 4) * 8;
  ldsm_x4(b, s + r * Tile<D>::kStride + kk * 16 + ((lane >> 3) & 1) * 8);
}

// The same from a tile stored [k][n] (k = k0.., n = n0..), transposed by ldmatrix.
template <int D>
__device__ inline void frag_b_kn(unsigned (&b)[4], const bf16* s, int k0, int n0, int lane) {
  const int r = k0 + (lane & 7) + ((lane >> 3) & 1) * 8;
  ldsm_x4_trans(b, s + r * Tile<D>::kStride + n0 + (lane >> 4) * 8);
}

// acc[16M x N] += A[16M x D] * tile^T, A being rows row0.. of sa, the tile stored [N][D]
// (scores S = Q K^T and the like). Each B fragment is read once for the M row tiles.
template <int D, int M, int N>
__device__ inline void rows_times_tile_t(float (&acc)[M][N / 8][4], const bf16* sa, int row0, const bf16* tile,
                                         int lane) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    unsigned a[M][4];
#pragma unroll
    for (int mi = 0; mi < M; ++mi) frag_a<D>(a[mi], sa, row0 + 16 * mi, kk, lane);
#pragma unroll
    for (int np = 0; np < N / 16; ++np) {
      unsigned b[4];
      frag_b_nk<D>(b, tile, np * 16, kk, lane);
#pragma unroll
      for (int mi = 0; mi < M; ++mi) {
        mma(acc[mi][2 * np], a[mi], b[0], b[1]);
        mma(acc[mi][2 * np + 1], a[mi], b[2], b[3]);
      }
    }
  }
}

// acc[16M x D] += P[16M x N] * tile, P given as f32 accumulator fragments, the tile [N][D].
template <int D, int M, int N>
__device__ inline void probs_times_tile(float (&acc)[M][D / 8][4], const float (&p)[M][N / 8][4], const bf16* tile,
                                        int lane) {
#pragma unroll
  for (int kk = 0; kk < N / 16; ++kk) {
    unsigned a[M][4];
#pragma unroll
    for (int mi = 0; mi < M; ++mi) {
      a[mi][0] = pack(p[mi][2 * kk][0], p[mi][2 * kk][1]);
      a[mi][1] = pack(p[mi][2 * kk][2], p[mi][2 * kk][3]);
      a[mi][2] = pack(p[mi][2 * kk + 1][0], p[mi][2 * kk + 1][1]);
      a[mi][3] = pack(p[mi][2 * kk + 1][2], p[mi][2 * kk + 1][3]);
    }
#pragma unroll
    for (int dp = 0; dp < D / 16; ++dp) {
      unsigned b[4];
      frag_b_kn<D>(b, tile, kk * 16, dp * 16, lane);
#pragma unroll
      for (int mi = 0; mi < M; ++mi) {
        mma(acc[mi][2 * dp], a[mi], b[0], b[1]);
        mma(acc[mi][2 * dp + 1], a[mi], b[2], b[3]);
      }
    }
  }
}

// Writes a warp's 16 x D accumulator times `mul` as bf16 rows row0.. of a matrix of stride ld
// (rows >= T and columns >= hs skipped).
template <int D>
__device__ inline void store_rows(bf16* g, std::int64_t ld, const float (&acc)[D / 8][4], float mul0, float mul1,
                                  int row0, int T, int hs, int lane) {
  const int ra = row0 + lane / 4, rb = ra + 8;
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt) {
    const int col = nt * 8 + (lane % 4) * 2;
    if (col >= hs) continue;
    if (ra < T) {
      *reinterpret_cast<unsigned*>(g + ra * ld + col) = pack(acc[nt][0] * mul0, acc[nt][1] * mul0);
    }
    if (rb < T) {
      *reinterpret_cast<unsigned*>(g + rb * ld + col) = pack(acc[nt][2] * mul1, acc[nt][3] * mul1);
    }
  }
}

// Shared memory of each kernel: its own 16*M*W-row tile(s) plus two stages of two 64-row tiles.
template <int D, int W, int M>
constexpr int forward_smem() { return (16 * M * W + 4 * kTile) * Tile<D>::kStride * 2; }  // Q; K, V x2
template <int D, int W, int M>
constexpr int backward_smem() { return (2 * 16 * M * W + 4 * kTile) * Tile<D>::kStride * 2 + 2 * kTile * 4; }

// grid (query tiles of 16*M*W, B*NH); the heaviest (last) query tiles start first. A warp skips
// key tiles wholly after its rows (causal), and masks only tiles that cross its diagonal.
template <int D, int W, int M>
__global__ void __launch_bounds__(W * 32) flash_forward_bf16(bf16* out, float* lse, const bf16* qkv, int T, int C,
                                                              int NH, int hs, float scale_log2) {
  constexpr int kWarpRows = 16 * M, kRows = kWarpRows * W, kThreads = 32 * W;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sK = sQ + kRows * Tile<D>::kStride;
  bf16* sV = sK + 2 * Tile<D>::kElems;
  const int qt = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int b = blockIdx.y / NH, h = blockIdx.y % NH;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t ld = 3LL * C;
  const bf16* q = qkv + static_cast<std::int64_t>(b) * T * ld + h * hs;
  const bf16* k = q + C;
  const bf16* v = q + 2 * C;
  const int q0 = qt * kRows;
  load_tile<D, kRows, kThreads>(sQ, q, ld, q0, T, hs);
  load_tile<D, kTile, kThreads>(sK, k, ld, 0, T, hs);
  load_tile<D, kTile, kThreads>(sV, v, ld, 0, T, hs);
  cp_async_commit();

  float o[M][D / 8][4] = {};
  float m[M][2], l[M][2];
#pragma unroll
  for (int mi = 0; mi < M; ++mi) {
    m[mi][0] = m[mi][1] = -INFINITY;
    l[mi][0] = l[mi][1] = 0.0f;
  }
  const int w0 = q0 + warp * kWarpRows;  // this warp's first row
  const int row_a = w0 + lane / 4;       // + 16*mi + 8*(e>>1)
  const int n_kv = (min(T, q0 + kRows) + kTile - 1) / kTile;
  for (int j = 0; j < n_kv; ++j) {
    const int stage = j & 1;
    if (j + 1 < n_kv) {
      load_tile<D, kTile, kThreads>(sK + (stage ^ 1) * Tile<D>::kElems, k, ld, (j + 1) * kTile, T, hs);
      load_tile<D, kTile, kThreads>(sV + (stage ^ 1) * Tile<D>::kElems, v, ld, (j + 1) * kTile, T, hs);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (j * kTile <= w0 + kWarpRows - 1) {  // warp-uniform: some key of the tile is visible to the warp
      const bf16* tk = sK + stage * Tile<D>::kElems;
      const bf16* tv = sV + stage * Tile<D>::kElems;
      const bool diagonal = j * kTile + kTile - 1 > w0;
      float s[M][8][4] = {};
      rows_times_tile_t<D, M, kTile>(s, sQ, warp * kWarpRows, tk, lane);
      // Scale into the log2 domain; mask keys after the query. (Key 0 is in tile 0 for every
      // row, so each row's running max is finite from the first tile on; a row that sees no key
      // of a later tile keeps its max and adds exp2(-inf) = 0.)
#pragma unroll
      for (int mi = 0; mi < M; ++mi) {
        float mx[2] = {m[mi][0], m[mi][1]};
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int col = j * kTile + nt * 8 + (lane % 4) * 2 + (e & 1);
            const int row = row_a + 16 * mi + (e >> 1) * 8;
            float x = s[mi][nt][e] * scale_log2;
            if (diagonal && col > row) x = -INFINITY;
            s[mi][nt][e] = x;
            mx[e >> 1] = fmaxf(mx[e >> 1], x);
          }
        }
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          mx[i] = fmaxf(mx[i], __shfl_xor_sync(kFull, mx[i], 1));
          mx[i] = fmaxf(mx[i], __shfl_xor_sync(kFull, mx[i], 2));
          const float corr = fast_exp2(m[mi][i] - mx[i]);
          m[mi][i] = mx[i];
          l[mi][i] *= corr;
#pragma unroll
          for (int dt = 0; dt < D / 8; ++dt) {
            o[mi][dt][2 * i] *= corr;
            o[mi][dt][2 * i + 1] *= corr;
          }
        }
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            s[mi][nt][e] = fast_exp2(s[mi][nt][e] - m[mi][e >> 1]);
            l[mi][e >> 1] += s[mi][nt][e];
          }
        }
      }
      probs_times_tile<D, M, kTile>(o, s, tv, lane);
    }
    __syncthreads();  // the next iteration's copy overwrites this stage
  }
  bf16* o_out = out + static_cast<std::int64_t>(b) * T * C + h * hs;
  float* lrow = lse + static_cast<std::int64_t>(blockIdx.y) * T;
#pragma unroll
  for (int mi = 0; mi < M; ++mi) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      l[mi][i] += __shfl_xor_sync(kFull, l[mi][i], 1);
      l[mi][i] += __shfl_xor_sync(kFull, l[mi][i], 2);
    }
    store_rows<D>(o_out, C, o[mi], 1.0f / l[mi][0], 1.0f / l[mi][1], w0 + 16 * mi, T, hs, lane);
    if (lane % 4 == 0) {
      constexpr float kLn2 = 0.69314718055994531f;
      const int ra = row_a + 16 * mi;
      if (ra < T) lrow[ra] = (m[mi][0] + log2f(l[mi][0])) * kLn2;
      if (ra + 8 < T) lrow[ra + 8] = (m[mi][1] + log2f(l[mi][1])) * kLn2;
    }
  }
}

// dK and dV of one tile of 16*M*W keys (grid (key tiles, B*NH)): loops over the query tiles
// that can see it, N queries at a time, remaking P^T = exp(S^T - lse) and dS^T = P^T (dP^T -
// delta). Each block owns its keys' rows of dK and dV: no atomics, a fixed order, the same bits
// every run.
template <int D, int W, int M, int N>
__global__ void __launch_bounds__(W * 32) flash_backward_dkdv_bf16(bf16* dqkv, const bf16* dout, const bf16* qkv,
                                                                    const float* lse, const float* delta, int T, int C,
                                                                    int NH, int hs, float scale_log2, float scale) {
  static_assert(kTile % N == 0 && N % 16 == 0, "N divides the 64-row tile in 16-row pieces");
  constexpr int kWarpRows = 16 * M, kRows = kWarpRows * W, kThreads = 32 * W;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sK = reinterpret_cast<bf16*>(smem);
  bf16* sV = sK + kRows * Tile<D>::kStride;
  bf16* sQ = sV + kRows * Tile<D>::kStride;  // 2 stages
  bf16* sG = sQ + 2 * Tile<D>::kElems;        // dO, 2 stages
  float* sL = reinterpret_cast<float*>(sG + 2 * Tile<D>::kElems);
  float* sD = sL + kTile;
  const int k0 = blockIdx.x * kRows;  // early keys see the most queries: they start first
  const int b = blockIdx.y / NH, h = blockIdx.y % NH;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t ld = 3LL * C;
  const bf16* q = qkv + static_cast<std::int64_t>(b) * T * ld + h * hs;
  const bf16* g = dout + static_cast<std::int64_t>(b) * T * C + h * hs;
  const float* lse_bh = lse + static_cast<std::int64_t>(blockIdx.y) * T;
  const float* delta_bh = delta + static_cast<std::int64_t>(blockIdx.y) * T;
  const int i0 = k0 / kTile;
  const int n_q = (T + kTile - 1) / kTile;
  load_tile<D, kRows, kThreads>(sK, q + C, ld, k0, T, hs);
  load_tile<D, kRows, kThreads>(sV, q + 2 * C, ld, k0, T, hs);
  load_tile<D, kTile, kThreads>(sQ, q, ld, i0 * kTile, T, hs);
  load_tile<D, kTile, kThreads>(sG, g, C, i0 * kTile, T, hs);
  cp_async_commit();

  float dk[M][D / 8][4] = {}, dv[M][D / 8][4] = {};
  const int w0 = k0 + warp * kWarpRows;  // this warp's first key
  const int key_a = w0 + lane / 4;       // + 16*mi + 8*(e>>1)
  for (int i = i0; i < n_q; ++i) {
    const int stage = (i - i0) & 1;
    if (i + 1 < n_q) {
      load_tile<D, kTile, kThreads>(sQ + (stage ^ 1) * Tile<D>::kElems, q, ld, (i + 1) * kTile, T, hs);
      load_tile<D, kTile, kThreads>(sG + (stage ^ 1) * Tile<D>::kElems, g, C, (i + 1) * kTile, T, hs);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    if (threadIdx.x < kTile) {
      const int t = i * kTile + threadIdx.x;
      constexpr float kLog2e = 1.4426950408889634f;
      sL[threadIdx.x] = t < T ? lse_bh[t] * kLog2e : INFINITY;  // +inf: a query past T weighs 0
      sD[threadIdx.x] = t < T ? delta_bh[t] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int part = 0; part < kTile / N; ++part) {
      const int qb = i * kTile + part * N;  // first query of this part
      if (qb + N - 1 < w0) continue;        // warp-uniform: no query of the part sees the warp's keys
      const bf16* tq = sQ + stage * Tile<D>::kElems + part * N * Tile<D>::kStride;
      const bf16* tg = sG + stage * Tile<D>::kElems + part * N * Tile<D>::kStride;
      const float* pl = sL + part * N;
      const float* pd = sD + part * N;
      const bool diagonal = qb < w0 + kWarpRows - 1;
      float p[M][N / 8][4] = {};
      rows_times_tile_t<D, M, N>(p, sK, warp * kWarpRows, tq, lane);  // S^T = K Q^T
#pragma unroll
      for (int mi = 0; mi < M; ++mi) {
#pragma unroll
        for (int nt = 0; nt < N / 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int qc = nt * 8 + (lane % 4) * 2 + (e & 1);
            const int key = key_a + 16 * mi + (e >> 1) * 8;
            const float x = fast_exp2(p[mi][nt][e] * scale_log2 - pl[qc]);
            p[mi][nt][e] = (diagonal && key > qb + qc) ? 0.0f : x;
          }
        }
      }
      probs_times_tile<D, M, N>(dv, p, tg, lane);  // dV += P^T dO
      float ds[M][N / 8][4] = {};
      rows_times_tile_t<D, M, N>(ds, sV, warp * kWarpRows, tg, lane);  // dP^T = V dO^T
#pragma unroll
      for (int mi = 0; mi < M; ++mi) {
#pragma unroll
        for (int nt = 0; nt < N / 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int qc = nt * 8 + (lane % 4) * 2 + (e & 1);
            ds[mi][nt][e] = p[mi][nt][e] * (ds[mi][nt][e] - pd[qc]);
          }
        }
      }
      probs_times_tile<D, M, N>(dk, ds, tq, lane);  // dK += dS^T Q
    }
    __syncthreads();
  }
  bf16* dkv = dqkv + static_cast<std::int64_t>(b) * T * ld + h * hs;
#pragma unroll
  for (int mi = 0; mi < M; ++mi) {
    store_rows<D>(dkv + C, ld, dk[mi], scale, scale, w0 + 16 * mi, T, hs, lane);
    store_rows<D>(dkv + 2 * C, ld, dv[mi], 1.0f, 1.0f, w0 + 16 * mi, T, hs, lane);
  }
}

// dQ of one tile of 16*M*W queries (grid (query tiles, B*NH), heaviest first): loops over the
// key tiles it sees, N keys at a time, remaking P and dS = P (dP - delta). Owns its rows of
// dQ: deterministic.
template <int D, int W, int M, int N>
__global__ void __launch_bounds__(W * 32) flash_backward_dq_bf16(bf16* dqkv, const bf16* dout, const bf16* qkv,
                                                                  const float* lse, const float* delta, int T, int C,
                                                                  int NH, int hs, float scale_log2, float scale) {
  static_assert(kTile % N == 0 && N % 16 == 0, "N divides the 64-row tile in 16-row pieces");
  constexpr int kWarpRows = 16 * M, kRows = kWarpRows * W, kThreads = 32 * W;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sG = sQ + kRows * Tile<D>::kStride;
  bf16* sK = sG + kRows * Tile<D>::kStride;  // 2 stages
  bf16* sV = sK + 2 * Tile<D>::kElems;        // 2 stages
  const int qt = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int b = blockIdx.y / NH, h = blockIdx.y % NH;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t ld = 3LL * C;
  const bf16* q = qkv + static_cast<std::int64_t>(b) * T * ld + h * hs;
  const bf16* k = q + C;
  const bf16* v = q + 2 * C;
  const bf16* g = dout + static_cast<std::int64_t>(b) * T * C + h * hs;
  const int q0 = qt * kRows;
  load_tile<D, kRows, kThreads>(sQ, q, ld, q0, T, hs);
  load_tile<D, kRows, kThreads>(sG, g, C, q0, T, hs);
  load_tile<D, kTile, kThreads>(sK, k, ld, 0, T, hs);
  load_tile<D, kTile, kThreads>(sV, v, ld, 0, T, hs);
  cp_async_commit();

  const int w0 = q0 + warp * kWarpRows;
  const int row_a = w0 + lane / 4;  // + 16*mi + 8*i
  float lse2[M][2], dl[M][2];
#pragma unroll
  for (int mi = 0; mi < M; ++mi) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int row = row_a + 16 * mi + 8 * i;
      constexpr float kLog2e = 1.4426950408889634f;
      lse2[mi][i] = row < T ? lse[static_cast<std::int64_t>(blockIdx.y) * T + row] * kLog2e : INFINITY;
      dl[mi][i] = row < T ? delta[static_cast<std::int64_t>(blockIdx.y) * T + row] : 0.0f;
    }
  }
  float dq[M][D / 8][4] = {};
  const int n_kv = (min(T, q0 + kRows) + kTile - 1) / kTile;
  for (int j = 0; j < n_kv; ++j) {
    const int stage = j & 1;
    if (j + 1 < n_kv) {
      load_tile<D, kTile, kThreads>(sK + (stage ^ 1) * Tile<D>::kElems, k, ld, (j + 1) * kTile, T, hs);
      load_tile<D, kTile, kThreads>(sV + (stage ^ 1) * Tile<D>::kElems, v, ld, (j + 1) * kTile, T, hs);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
#pragma unroll
    for (int part = 0; part < kTile / N; ++part) {
      const int kb = j * kTile + part * N;  // first key of this part
      if (kb > w0 + kWarpRows - 1) continue;  // warp-uniform: no key of the part is visible to the warp
      const bf16* tk = sK + stage * Tile<D>::kElems + part * N * Tile<D>::kStride;
      const bf16* tv = sV + stage * Tile<D>::kElems + part * N * Tile<D>::kStride;
      const bool diagonal = kb + N - 1 > w0;
      float p[M][N / 8][4] = {};
      rows_times_tile_t<D, M, N>(p, sQ, warp * kWarpRows, tk, lane);  // S = Q K^T
      float ds[M][N / 8][4] = {};
      rows_times_tile_t<D, M, N>(ds, sG, warp * kWarpRows, tv, lane);  // dP = dO V^T
#pragma unroll
      for (int mi = 0; mi < M; ++mi) {
#pragma unroll
        for (int nt = 0; nt < N / 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int col = kb + nt * 8 + (lane % 4) * 2 + (e & 1);
            const int row = row_a + 16 * mi + (e >> 1) * 8;
            const float x = fast_exp2(p[mi][nt][e] * scale_log2 - lse2[mi][e >> 1]);
            const float pr = (diagonal && col > row) ? 0.0f : x;
            ds[mi][nt][e] = pr * (ds[mi][nt][e] - dl[mi][e >> 1]);
          }
        }
      }
      probs_times_tile<D, M, N>(dq, ds, tk, lane);  // dQ += dS K
    }
    __syncthreads();
  }
  bf16* dq_out = dqkv + static_cast<std::int64_t>(b) * T * ld + h * hs;
#pragma unroll
  for (int mi = 0; mi < M; ++mi) store_rows<D>(dq_out, ld, dq[mi], scale, scale, w0 + 16 * mi, T, hs, lane);
}

}  // namespace trainer::gpu::flash
