// Softmax cross-entropy launcher: crossentropy_forward_backward.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

// losses[n] = logsumexp(logits[n,:]) - logits[n,target]; dlogits (may be null, may alias
// logits) = (softmax - onehot) * dloss. Targets < 0: loss 0, gradient 0. Targets >= V set
// kBadTarget in *error_word and give NaN.
cudaError_t crossentropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                          const std::int32_t* targets, float dloss, int N, int V,
                                          unsigned* error_word, cudaStream_t s);

}  // namespace trainer::gpu
