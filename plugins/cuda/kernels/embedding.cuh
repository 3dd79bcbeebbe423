// Embedding launchers: embedding_forward, embedding_backward (+ its scratch size).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace trainer::gpu {

// out[r,:] = wte[tokens[r],:] + wpe[r % T,:]. A token outside [0, vocab) gives a NaN row
// and sets kBadTokenForward in *error_word.
cudaError_t embedding_forward(float* out, const std::int32_t* tokens, const float* wte, const float* wpe,
                              int B, int T, int C, std::int64_t vocab, unsigned* error_word, cudaStream_t s);

// Bytes of scratch embedding_backward needs for B*T tokens.
std::size_t embedding_backward_scratch_bytes(std::int64_t rows);
// dwte[tokens[r],:] += dout[r,:]; dwpe[r % T,:] += dout[r,:]. Deterministic: tokens are
// stably sorted (with their positions), and each token's row adds its positions in
// increasing order, starting from the old value: the CPU's order of additions, so the result
// equals the CPU's bit for bit. Bad tokens are skipped and set kBadTokenBackward.
cudaError_t embedding_backward(float* dwte, float* dwpe, const float* dout, const std::int32_t* tokens,
                               int B, int T, int C, std::int64_t vocab, void* scratch,
                               std::size_t scratch_bytes, unsigned* error_word, cudaStream_t s);

}  // namespace trainer::gpu
