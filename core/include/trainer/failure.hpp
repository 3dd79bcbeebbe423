// Failure policies: what the supervisor does when a worker dies, and how many bad
// (non-finite) steps in a row a run tolerates before it gives up.
#pragma once
#include "trainer/plugin.hpp"

namespace trainer {

struct WorkerFailure {
  int rank = -1;      // the first rank that failed (-1 if unknown)
  int exit_code = 0;  // its exit status, or 128 + signal number
  int attempt = 0;    // 0-based attempt of the job that failed
};

// exclude: restart the job without the failed rank, at a smaller data-parallel degree (elastic).
enum class FailureAction { abort, restart, exclude };

class FailurePolicy : public Plugin {
 public:
  ~FailurePolicy() override;
  // Asked by the supervisor after an attempt of the job ended with a worker failure.
  virtual FailureAction on_worker_failure(const WorkerFailure& failure) = 0;
  // Seconds to wait before starting attempt `attempt` (1 for the first restart).
  virtual double backoff_seconds(int attempt) const = 0;
  // Consecutive skipped (non-finite) steps after which the run aborts; 0: never.
  virtual int max_consecutive_bad_steps() const = 0;
};

}  // namespace trainer
