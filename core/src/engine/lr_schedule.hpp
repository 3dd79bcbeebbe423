// LrSchedule: linear warmup, then cosine or linear decay to min_lr at the last step, or
// constant.
#pragma once
#include <cstdint>
#include <string>

namespace trainer {

struct LrSchedule {
  double lr = 6e-4;
  double min_lr = 0.0;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;
  std::string decay = "cosine";  // cosine | linear | constant

  // Learning rate for 0-based `step`.
  double at(std::int64_t step) const;
};

}  // namespace trainer
