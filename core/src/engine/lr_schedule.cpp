#include "engine/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace trainer {

double LrSchedule::at(std::int64_t step) const {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (decay == "constant") return lr;
  const std::int64_t span = std::max<std::int64_t>(1, total_steps - 1 - warmup_steps);
  const double progress = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(span), 0.0, 1.0);
  const double factor = decay == "linear" ? 1.0 - progress : 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return min_lr + (lr - min_lr) * factor;
}

}  // namespace trainer
