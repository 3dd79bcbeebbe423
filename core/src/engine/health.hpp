// The recipe's `health` section (replica checks, non-finite and spiking losses) and the
// count of bad steps that ends a run which cannot get past them.
#pragma once
#include <cstdint>
#include <string>

#include "trainer/config.hpp"

namespace trainer {

enum class BadStepAction { skip, rollback };

struct HealthSettings {
  std::int64_t sdc_check_every = 0;  // 0: off
  bool sdc_rollback = true;          // false: abort
  BadStepAction on_nonfinite = BadStepAction::skip;
  BadStepAction on_spike = BadStepAction::skip;
  double spike_ratio = 0;            // 0: off
  int spike_window = 20;
  static HealthSettings from_recipe(const ConfigNode& recipe);
};

// Bad steps (skipped, spiking, or found with diverged replicas) with no good step past the
// last of them. A good step that only replays steps before the last bad one (after a
// rollback) does not count as progress: a fault that recurs at the same step after every
// rollback still reaches the limit instead of looping for ever.
class BadStepCounter {
 public:
  explicit BadStepCounter(int limit) : limit_(limit) {}
  void bad(std::int64_t step, bool non_finite);  // 1-based steps, as logged
  void good(std::int64_t step);
  int count() const { return count_; }
  bool exhausted() const { return limit_ > 0 && count_ >= limit_; }
  // "3 consecutive steps with non-finite gradients (steps 15-17)", or "... bad steps ...".
  std::string abort_message() const;

 private:
  int limit_;  // 0: never
  int count_ = 0;
  bool all_non_finite_ = true;
  std::int64_t first_ = 0, last_ = 0;
};

}  // namespace trainer
