// Failure policies, read by the supervisor (worker failures) and the trainer (bad steps):
//   abort    the first failed worker ends the job with its exit status
//   restart  the job is started again, up to max_restarts times, after a doubling backoff;
//            its workers resume from the newest checkpoint (checkpoint.resume: auto)
//   elastic  like restart, but a rank that fails exclude_after attempts in a row is left out:
//            the job restarts on the other ranks, at a smaller data-parallel degree
#include <cmath>

#include "trainer/failure.hpp"

namespace {

trainer::KeySpec max_bad_steps_key() {
  return {"max_bad_steps", trainer::KeyType::integer, "3",
          "consecutive skipped (non-finite) steps after which the run aborts with status 3; 0: never",
          false, 0.0, {}, {}};
}

#if defined(FAILURE_ABORT)
constexpr const char* kName = "abort";
constexpr const char* kSummary = "the first failed worker ends the job";

class Policy final : public trainer::FailurePolicy {
 public:
  explicit Policy(const trainer::ConfigNode& c) : max_bad_steps_(static_cast<int>(c.get_int("max_bad_steps"))) {}
  trainer::FailureAction on_worker_failure(const trainer::WorkerFailure&) override {
    return trainer::FailureAction::abort;
  }
  double backoff_seconds(int) const override { return 0; }
  int max_consecutive_bad_steps() const override { return max_bad_steps_; }

 private:
  int max_bad_steps_;
};

std::vector<trainer::KeySpec> keys() { return {max_bad_steps_key()}; }
#elif defined(FAILURE_RESTART)
constexpr const char* kName = "restart";
constexpr const char* kSummary = "restart the job from its newest checkpoint after a worker fails";

class Policy final : public trainer::FailurePolicy {
 public:
  explicit Policy(const trainer::ConfigNode& c)
      : max_restarts_(static_cast<int>(c.get_int("max_restarts"))),
        backoff_s_(c.get_double("backoff_s")),
        max_bad_steps_(static_cast<int>(c.get_int("max_bad_steps"))) {}
  trainer::FailureAction on_worker_failure(const trainer::WorkerFailure& f) override {
    return f.attempt < max_restarts_ ? trainer::FailureAction::restart : trainer::FailureAction::abort;
  }
  double backoff_seconds(int attempt) const override {
    return attempt < 1 ? 0.0 : backoff_s_ * std::ldexp(1.0, attempt - 1);
  }
  int max_consecutive_bad_steps() const override { return max_bad_steps_; }

 private:
  int max_restarts_;
  double backoff_s_;
  int max_bad_steps_;
};

std::vector<trainer::KeySpec> keys() {
  return {{"max_restarts", trainer::KeyType::integer, "3", "restarts of the job before it gives up", false, 0.0,
           1000.0, {}},
          {"backoff_s", trainer::KeyType::number, "1",
           "seconds before the first restart; each further restart waits twice as long", false, 0.0, 3600.0, {}},
          max_bad_steps_key()};
}
#elif defined(FAILURE_ELASTIC)
constexpr const char* kName = "elastic";
constexpr const char* kSummary = "restart after a failure; leave out a rank that keeps failing (smaller dp)";

class Policy final : public trainer::FailurePolicy {
 public:
  explicit Policy(const trainer::ConfigNode& c)
      : max_restarts_(static_cast<int>(c.get_int("max_restarts"))),
        exclude_after_(static_cast<int>(c.get_int("exclude_after"))),
        backoff_s_(c.get_double("backoff_s")),
        max_bad_steps_(static_cast<int>(c.get_int("max_bad_steps"))) {}
  // Counts the failures of one rank in consecutive attempts; ranks are renumbered after an
  // exclusion, so the count starts again then.
  trainer::FailureAction on_worker_failure(const trainer::WorkerFailure& f) override {
    if (f.attempt >= max_restarts_ || f.rank < 0) return trainer::FailureAction::abort;
    streak_ = f.rank == last_rank_ ? streak_ + 1 : 1;
    last_rank_ = f.rank;
    if (streak_ < exclude_after_) return trainer::FailureAction::restart;
    streak_ = 0;
    last_rank_ = -1;
    return trainer::FailureAction::exclude;
  }
  double backoff_seconds(int attempt) const override {
    return attempt < 1 ? 0.0 : backoff_s_ * std::ldexp(1.0, attempt - 1);
  }
  int max_consecutive_bad_steps() const override { return max_bad_steps_; }

 private:
  int max_restarts_;
  int exclude_after_;
  double backoff_s_;
  int max_bad_steps_;
  int last_rank_ = -1;
  int streak_ = 0;
};

std::vector<trainer::KeySpec> keys() {
  return {{"max_restarts", trainer::KeyType::integer, "3", "restarts of the job (exclusions included) before it gives up",
           false, 0.0, 1000.0, {}},
          {"exclude_after", trainer::KeyType::integer, "2",
           "a rank that fails this many attempts in a row is left out and the job continues without it", false, 1.0,
           100.0, {}},
          {"backoff_s", trainer::KeyType::number, "1",
           "seconds before the first restart; each further restart waits twice as long", false, 0.0, 3600.0, {}},
          max_bad_steps_key()};
}
#else
#error "define one FAILURE_<MODE>"
#endif

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  return std::make_unique<Policy>(ctx.config);
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::failure, kName, "0.1.0",
                                            kSummary, &create, &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
