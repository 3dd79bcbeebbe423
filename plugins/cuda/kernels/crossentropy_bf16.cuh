// bf16 softmax cross-entropy launcher: crossentropy_forward_backward_bf16.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

// As crossentropy_forward_backward (crossentropy.cuh) with bf16 logits and dlogits (dlogits
// may be null or alias logits): f32 math, f32 losses, no f32 copy of the [N,V] logits.
cudaError_t crossentropy_forward_backward_bf16(float* losses, __nv_bfloat16* dlogits, const __nv_bfloat16* logits,
                                               const std::int32_t* targets, float dloss, int N, int V,
                                               unsigned* error_word, cudaStream_t s);

}  // namespace trainer::gpu
