// Counter-based random numbers: a value is a pure function of (seed, stream, index),
// so dropout masks are regenerated exactly in backward and in recompute, whatever the
// order or the device. Header-only and free of host-only code so CUDA kernels use it too.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define TRAINER_HOST_DEVICE __host__ __device__
#else
#define TRAINER_HOST_DEVICE
#endif

namespace trainer {

struct RngKey {
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;
};

// splitmix64 finaliser: a bijective mix with good avalanche, cheap on CPU and GPU.
TRAINER_HOST_DEVICE inline std::uint64_t rng_mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

TRAINER_HOST_DEVICE inline std::uint64_t rng_bits(RngKey key, std::uint64_t index) {
  return rng_mix(rng_mix(key.seed ^ rng_mix(key.stream)) ^ index);
}

// Uniform in [0, 1) with 24 bits of resolution (exact in float).
TRAINER_HOST_DEVICE inline float rng_uniform(RngKey key, std::uint64_t index) {
  return static_cast<float>(rng_bits(key, index) >> 40) * (1.0f / 16777216.0f);
}

// Streams for independent uses of one seed: each field has its own bit range.
TRAINER_HOST_DEVICE inline std::uint64_t rng_stream(std::uint64_t step, std::uint64_t micro,
                                                    std::uint64_t site) {
  return (step << 32) ^ (micro << 16) ^ site;
}

}  // namespace trainer
