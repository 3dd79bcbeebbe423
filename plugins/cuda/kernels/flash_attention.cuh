// Fused causal attention launchers (no T x T matrix anywhere): flash_attention_refusal,
// flash_attention_forward, flash_attention_backward.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

// The layout is the backend's: qkv [B,T,3C] (q | k | v, head h at columns h*hs of each),
// out and dout [B,T,C], lse [B,NH,T] f32 (natural log-sum-exp of each query row's scaled,
// masked scores). `bf16` says whether qkv, out, dout and dqkv hold bf16 or f32 elements.

// Null when the kernels handle head size hs in this dtype; else why not (for the message).
// f32: hs <= 128. bf16: hs a multiple of 8, at most 128 (tensor cores; 32, 64, 128 exact,
// others zero-padded to the next of those).
const char* flash_attention_refusal(int hs, bool bf16);

cudaError_t flash_attention_forward(void* out, float* lse, const void* qkv, bool bf16, int B, int T, int C, int NH,
                                    cudaStream_t stream);

// dqkv overwritten. delta is scratch of B*NH*T floats (rowsum(dout * out) per query row).
cudaError_t flash_attention_backward(void* dqkv, float* delta, const void* dout, const void* qkv, const void* out,
                                     const float* lse, bool bf16, int B, int T, int C, int NH, cudaStream_t stream);

}  // namespace trainer::gpu
