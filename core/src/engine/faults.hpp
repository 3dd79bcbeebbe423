// Faults injected from the recipe's `faults` list, so that users can test a failure policy
// the way a real fault would exercise it.
#pragma once
#include <cstdint>
#include <vector>

#include "trainer/config.hpp"

namespace trainer {

// One injected fault of the recipe's `faults` list.
struct Fault {
  enum class Kind { kill, nan, slow };
  std::int64_t step = 0;  // 1-based, as logged
  int rank = 0;
  Kind kind = Kind::kill;
  double seconds = 1;  // slow only
};

// The validated recipe's faults (empty without a `faults` section).
std::vector<Fault> parse_faults(const ConfigNode& recipe);
// The job's attempt from TRAINER_ATTEMPT (0 when unset): faults fire only in attempt 0.
int job_attempt();

}  // namespace trainer
