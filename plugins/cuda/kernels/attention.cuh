// Causal-softmax launchers of the former materialised attention (S = QK^T through cuBLAS into
// [B,NH,T,T], softmax in place, then P V): softmax_causal_forward, softmax_causal_backward. The
// backend now uses flash_attention.cuh; these remain for bench/attention_bench.cu, which times
// the two against each other.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

// att holds rows of T scores (row r is query t = r % T); in place, each row becomes the softmax
// over columns 0..t, with 0 above the diagonal.
cudaError_t softmax_causal_forward(float* att, std::int64_t rows, int T, cudaStream_t s);
// datt holds dP; in place it becomes dS = P * (dP - rowsum(P * dP)), 0 above the diagonal.
cudaError_t softmax_causal_backward(float* datt, const float* att, std::int64_t rows, int T, cudaStream_t s);

}  // namespace trainer::gpu
