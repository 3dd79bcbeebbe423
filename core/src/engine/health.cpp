#include "engine/health.hpp"

#include <fmt/format.h>

namespace trainer {

HealthSettings HealthSettings::from_recipe(const ConfigNode& recipe) {
  HealthSettings s;
  if (!recipe.has("health")) return s;
  const auto& h = recipe.at("health");
  const auto action = [](const std::string& v) { return v == "rollback" ? BadStepAction::rollback : BadStepAction::skip; };
  s.sdc_check_every = h.get_int("sdc_check_every");
  s.sdc_rollback = h.get_string("on_sdc") == "rollback";
  s.on_nonfinite = action(h.get_string("on_nonfinite"));
  s.on_spike = action(h.get_string("on_spike"));
  s.spike_ratio = h.get_double("spike_ratio");
  s.spike_window = static_cast<int>(h.get_int("spike_window"));
  return s;
}

void BadStepCounter::bad(std::int64_t step, bool non_finite) {
  if (count_ == 0) {
    first_ = step;
    all_non_finite_ = true;
  }
  ++count_;
  all_non_finite_ = all_non_finite_ && non_finite;
  if (step > last_ || count_ == 1) last_ = step;
}

void BadStepCounter::good(std::int64_t step) {
  if (count_ > 0 && step > last_) count_ = 0;
}

std::string BadStepCounter::abort_message() const {
  const std::string steps = first_ == last_ ? fmt::format("step {}", first_) : fmt::format("steps {}-{}", first_, last_);
  return fmt::format("{} consecutive {} ({})", count_,
                     all_non_finite_ ? "steps with non-finite gradients" : "bad steps", steps);
}

}  // namespace trainer
