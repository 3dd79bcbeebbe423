// bf16 on the host: f32 -> bf16 with round-to-nearest-even (NaN stays NaN) and bf16 -> f32,
// bit-exact with the CUDA intrinsics __float2bfloat16_rn / __bfloat162float. Header-only.
#pragma once
#include <cstdint>
#include <cstring>

namespace trainer {

inline std::uint16_t f32_to_bf16(float f) {
  std::uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0) {
    return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // quiet NaN, sign kept
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

inline float bf16_to_f32(std::uint16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float f = 0;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The nearest bf16 value, as a float.
inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

}  // namespace trainer
