// Vocabulary-parallel cross-entropy launchers: crossentropy_shard_stats, crossentropy_shard_finish.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace trainer::gpu {

// One shard of the vocabulary: logits [N, V] hold global ids [first, first + V). T is float or
// __nv_bfloat16 (passed as void*, `bf16` says which). Per row: stats[n] = {max, sum of
// exp(z - max), z of the target when this shard holds it, else 0}.
cudaError_t crossentropy_shard_stats(float* stats, const void* logits, bool bf16, const std::int32_t* targets,
                                     int first, int N, int V, cudaStream_t s);

// all_stats [shards, N, 3] (every shard's stats, gathered): losses[n] = log S + M - z_target
// (0 where the target is negative), dlogits (may be null, may alias logits, logits' dtype) =
// (softmax - onehot) * dloss, rows of negative targets zero. Deterministic (fixed trees).
cudaError_t crossentropy_shard_finish(float* losses, void* dlogits, const void* logits, bool bf16,
                                      const std::int32_t* targets, const float* all_stats, int shards, int first,
                                      float dloss, int N, int V, cudaStream_t s);

}  // namespace trainer::gpu
