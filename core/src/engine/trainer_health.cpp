// The trainer's run-time health: bad steps (non-finite or spiking losses) skipped or rolled
// back, the replicas' parameters compared against silent data corruption, the faults that
// exercise both (bitflip, spike), and the in-process rollback to the newest checkpoint.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "checkpoint/checkpointer.hpp"
#include "engine/replica_check.hpp"
#include "engine/trainer.hpp"

namespace trainer {
namespace {

// The top mantissa bit: the value moves by a quarter to a half of itself, enough to change
// training, not enough to overflow into a non-finite loss that another check would catch.
constexpr int kFlippedBit = 22;

}  // namespace

bool Trainer::replica_check_due(std::int64_t steps_done) const {
  if (health_.sdc_check_every <= 0 || !dp_ || !replicas_) return false;
  // Also before every save, so that no checkpoint holds diverged replicas, and after the
  // last step.
  return steps_done % health_.sdc_check_every == 0 || checkpointer_->due(steps_done) || steps_done == steps_;
}

void Trainer::inject_bitflip(const Fault& f) {
  // The middle element of the parameters in store order: inside some block's weights.
  const std::int64_t at = params_->numel() / 2;
  std::size_t p = 0;
  while (p + 1 < params_->size() && params_->offset(p + 1) <= at) ++p;
  const Tensor t = params_->value(p);
  if (!t) throw std::logic_error("bitflip fault: the parameter is not resident (layout fsdp keeps no replicas)");
  std::vector<float> host(static_cast<std::size_t>(t.numel()));
  components_.backend->copy_to_host(host.data(), t);
  const std::size_t e = static_cast<std::size_t>(at - params_->offset(p));
  const float before = host[e];
  std::uint32_t bits = 0;
  std::memcpy(&bits, &host[e], sizeof bits);
  bits ^= 1u << kFlippedBit;
  std::memcpy(&host[e], &bits, sizeof bits);
  components_.backend->copy_from_host(t, host.data());
  fmt::print(stderr, "fault: rank {} flips bit {} of '{}' element {} ({:.9g} -> {:.9g}) before step {}\n", f.rank,
             kFlippedBit, params_->spec(p).name, e, before, host[e], f.step);
}

void Trainer::consume_faults_through(std::int64_t step) {
  for (auto& f : faults_) {
    if (f.step <= step) f.consumed = true;
  }
}

bool Trainer::on_bad_step(const StepResult& r, RunLog& log) {
  std::string why, injected_by;
  const Fault::Kind kind = r.spike ? Fault::Kind::spike : Fault::Kind::nan;
  for (const auto& f : faults_) {
    if (f.kind != kind || f.step != step_ || f.consumed) continue;
    if (!injected_by.empty()) injected_by += ", ";
    injected_by += std::to_string(f.rank);
  }
  if (r.spike) {
    why = fmt::format("loss spike: loss {:.4f} is {:.2f} times the mean of the last {} good steps ({:.4f})", r.loss,
                      *r.spike, health_.spike_window, r.loss / *r.spike);
    if (!injected_by.empty()) why += fmt::format("; rank {} multiplied its loss by {:g} (faults)", injected_by, kSpikeFactor);
  } else if (!injected_by.empty()) {
    why = fmt::format("rank {} injected a NaN into its gradient (faults)", injected_by);
  } else if (!std::isfinite(r.loss)) {
    why = "all ranks see a non-finite global loss";
  } else {
    why = "all ranks see a non-finite global gradient norm";
  }
  const BadStepAction action = r.spike ? health_.on_spike : health_.on_nonfinite;
  log.json({{"event", "\"bad_step\""}, {"step", std::to_string(step_)}, {"reason", RunLog::json_string(why)},
            {"action", action == BadStepAction::rollback ? "\"rollback\"" : "\"skip\""}});
  if (rank_ == 0) fmt::print(stderr, "warning: step {}: update skipped: {}\n", step_, why);  // also under --quiet
  bad_steps_.bad(step_, !r.spike);
  if (bad_steps_.exhausted()) abort_run(log, bad_steps_.abort_message());
  return action == BadStepAction::rollback;
}

bool Trainer::check_replicas(RunLog& log) {
  const auto t0 = std::chrono::steady_clock::now();
  auto& backend = *components_.backend;
  const ReplicaVerdict v = judge_replicas(exchange_digests(backend, *dp_, parameter_digests(backend, *params_)));
  const double ms = 1000.0 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log.json({{"event", "\"replica_check\""}, {"step", std::to_string(step_)}, {"agree", v.agree ? "true" : "false"},
            {"ms", fmt::format("{:.3f}", ms)}});
  if (v.agree) return false;
  const std::vector<int> global = mesh_.group(Axis::dp, rank_);
  std::vector<std::string> names;
  for (const auto& s : params_->specs()) names.push_back(s.name);
  const std::string what =
      fmt::format("silent data corruption at step {}: {}", step_, describe_verdict(v, global, names));
  std::string diverging;
  for (int r : v.diverging) {
    if (!diverging.empty()) diverging += ",";
    diverging += std::to_string(global[static_cast<std::size_t>(r)]);
  }
  std::string diverging_json = "[";
  diverging_json += diverging;
  diverging_json += "]";
  log.json({{"event", "\"sdc\""}, {"step", std::to_string(step_)}, {"diverging", diverging_json},
            {"message", RunLog::json_string(what)}});
  if (rank_ == 0) fmt::print(stderr, "error: {}\n", what);
  if (!health_.sdc_rollback) abort_run(log, what);
  bad_steps_.bad(step_, false);
  if (bad_steps_.exhausted()) abort_run(log, bad_steps_.abort_message());
  return true;
}

void Trainer::abort_run(RunLog& log, const std::string& why) {
  const std::string message = "trainer: aborting: " + why;
  log.json({{"event", "\"abort\""}, {"step", std::to_string(step_)}, {"message", RunLog::json_string(message)}});
  if (rank_ == 0) fmt::print(stderr, "{}\n", message);
  throw BadStepsError(message);
}

void Trainer::roll_back(RunLog& log) {
  const std::int64_t from = step_;
  // Replayed steps run without the faults that fired the first time, so the replay ends
  // where a run without them ends.
  consume_faults_through(from);
  log_checkpoints_written(log, true);  // a save in flight may be the one to go back to
  checkpointer_.reset();
  resumed_from_.clear();
  setup_checkpoints(components_.layout->optimizer_targets(), true);
  for (const auto& w : checkpointer_->warnings()) {
    log.json({{"event", "\"checkpoint_warning\""}, {"message", RunLog::json_string(w)}});
    if (rank_ == 0) fmt::print(stderr, "warning: {}\n", w);
  }
  if (resumed_from_.empty()) {
    abort_run(log, fmt::format("step {}: no intact checkpoint in {} to roll back to", from,
                               checkpointer_->settings().dir.string()));
  }
  spikes_.rewind(step_);
  log.json({{"event", "\"rollback\""}, {"from", std::to_string(from)}, {"to", std::to_string(step_)},
            {"dir", RunLog::json_string(resumed_from_)}});
  if (rank_ == 0) {
    fmt::print(stderr, "trainer: step {}: rolled back to step {} ({}); replaying\n", from, step_, resumed_from_);
  }
}

}  // namespace trainer
