// Faults injected from the recipe's `faults` list, so that users can test a failure policy
// the way a real fault would exercise it.
#pragma once
#include <cstdint>
#include <vector>

#include "trainer/config.hpp"

namespace trainer {

// One injected fault of the recipe's `faults` list.
struct Fault {
  enum class Kind { kill, nan, slow, bitflip, spike, hang, corrupt, kill_during_save };
  std::int64_t step = 0;  // 1-based, as logged
  int rank = 0;
  Kind kind = Kind::kill;
  double seconds = 1;  // slow only
  bool every_attempt = false;  // attempts: all (fires again after a restart)
  // Set once the fault has fired: a rollback replays its step without it, so that the
  // replay ends where a clean run ends.
  bool consumed = false;
};

// The validated recipe's faults (empty without a `faults` section).
std::vector<Fault> parse_faults(const ConfigNode& recipe);
// The faults that fire in `attempt`: all of them in attempt 0, later only `attempts: all`.
std::vector<Fault> faults_for_attempt(std::vector<Fault> faults, int attempt);
// The job's attempt from TRAINER_ATTEMPT (0 when unset).
int job_attempt();

}  // namespace trainer
