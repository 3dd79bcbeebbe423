// Trainer::run: the whole loop as a user sees it — log lines, evaluation, checkpoints,
// the bad-step rule and the final summary.
#include "engine/trainer.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <thread>

#include "checkpoint/checkpointer.hpp"
#include "comm/flight_recorder.hpp"
#include "data/synth.hpp"
#include "engine/checkpoint_faults.hpp"
#include "engine/components.hpp"
#include "plugin/registry.hpp"
#include "recipe/print.hpp"
#include "trainer/failure.hpp"

namespace trainer {

TrainSummary Trainer::run() {
  const auto& train = recipe_.at("train");
  const std::int64_t log_every = train.get_int("log_every"), eval_every = train.get_int("eval_every");
  const std::filesystem::path run_dir = recipe_.at("output").get_string("dir");
  // Rank 0 speaks for the job; the others' figures reach it through the collectives.
  const bool console = !options_.quiet && rank_ == 0;
  const bool files = options_.write_run_dir && rank_ == 0;
  if (files) {
    std::filesystem::create_directories(run_dir);
    std::ofstream(run_dir / "recipe.yaml") << recipe::print_recipe(recipe_);
  }
  RunLog log(files ? run_dir : std::filesystem::path(), console && isatty(STDOUT_FILENO));
  if (console) {
    log.note(fmt::format("run '{}': model {} parameters ({}), {} blocks, sequence {}; batch {} x {} tokens; "
                         "{} data-parallel rank(s) x {} micro-batch(es) of {}; layout {}, overlap {}; {} steps",
                         recipe_.at("output").get_string("name"), format_count(static_cast<double>(params_->numel())),
                         format_bytes(static_cast<double>(params_->numel()) * 4.0), components_.model->num_blocks(),
                         shape_.T, global_batch_, shape_.T, dp_size_, accum_, shape_.B,
                         recipe_.at("layout").get_string("plugin"), recipe_.at("overlap").get_string("plugin"), steps_));
    if (mesh_.size(Axis::tp) > 1) {
      log.note(fmt::format("tensor parallel: {} ranks per replica{}; the parameter count above is one rank's share",
                           mesh_.size(Axis::tp),
                           recipe_.at("parallel").get_bool("sequence_parallel") ? ", sequence parallel" : ""));
    }
  }

  log.json({{"event", "\"start\""}, {"steps", std::to_string(steps_)}, {"dp", std::to_string(dp_size_)},
            {"layout", RunLog::json_string(recipe_.at("layout").get_string("plugin"))},
            {"overlap", RunLog::json_string(recipe_.at("overlap").get_string("plugin"))}});
  for (const auto& w : checkpointer_->warnings()) {
    log.json({{"event", "\"checkpoint_warning\""}, {"message", RunLog::json_string(w)}});
    if (rank_ == 0) fmt::print(stderr, "warning: {}\n", w);  // also under --quiet
  }
  if (health_.sdc_check_every > 0 && dp_size_ > 1 && !replicas_ && console) {
    log.note("health: the layout keeps no full replica of the parameters (each rank holds a shard): "
             "sdc_check_every has nothing to compare, the replica check is off");
  }
  const std::int64_t first_step = step_;
  if (!resumed_from_.empty()) {
    log.json({{"event", "\"resume\""}, {"step", std::to_string(step_)}, {"from", RunLog::json_string(resumed_from_)}});
    if (console) log.note(fmt::format("resuming after step {} from {}", step_, resumed_from_));
  }
  TrainSummary summary;
  summary.run_dir = run_dir;
  summary.entropy_floor = entropy_floor_;
  std::vector<double> tps;
  double comm_total = 0, comm_exposed = 0, compute = 0;
  const auto t_start = std::chrono::steady_clock::now();
  const double tokens_per_step = static_cast<double>(global_batch_) * shape_.T;
  while (step_ < steps_ && (options_.stop_after < 0 || step_ < options_.stop_after)) {
    comm::FlightRecorder::process().set_step(step_ + 1);  // also for what happens before train_step
    if (const Fault* f = fault_at(Fault::Kind::hang, step_ + 1, rank_)) {
      fmt::print(stderr, "fault: rank {} hangs before its first collective of step {}\n", f->rank, f->step);
      std::fflush(stderr);
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));  // until the job stops it
    }
    if (const Fault* f = fault_at(Fault::Kind::corrupt, step_ + 1, rank_)) {
      corrupt_newest_checkpoint(*checkpointer_, rank_, f->step);  // before a kill of the same step
    }
    if (const Fault* f = fault_at(Fault::Kind::kill, step_ + 1, rank_)) {
      fmt::print(stderr, "fault: rank {} kills itself at the start of step {}\n", f->rank, f->step);
      std::fflush(stdout);
      std::fflush(stderr);
      std::raise(SIGKILL);
    }
    if (const Fault* f = fault_at(Fault::Kind::slow, step_ + 1, rank_)) {
      std::this_thread::sleep_for(std::chrono::duration<double>(f->seconds));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const StepResult r = train_step();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tps.push_back(tokens_per_step / dt);
    comm_total += r.comm.total_s;
    comm_exposed += r.comm.exposed_s;
    compute += dt - r.comm.exposed_s;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    StepRecord rec{step_, steps_, r.loss, r.lr, r.grad_norm, tokens_per_step / dt, 1000.0 * dt,
                   elapsed / static_cast<double>(step_ - first_step) * static_cast<double>(steps_ - step_), r.skipped,
                   1000.0 * r.comm.total_s, 1000.0 * r.comm.exposed_s, dp_size_ > 1};
    log.step(rec, console && (step_ % log_every == 0 || step_ == 1 || step_ == steps_ || r.skipped));
    if (pipeline_) log_pipeline_step(log);  // collective over the stages
    summary.final_loss = r.loss;
    // A bad step or diverged replicas may send every rank back to the newest checkpoint.
    bool roll_back_now = false;
    if (r.skipped) {
      roll_back_now = on_bad_step(r, log);
    } else {
      bad_steps_.good(step_);
    }
    if (!roll_back_now && replica_check_due(step_)) roll_back_now = check_replicas(log);
    if (roll_back_now) {
      roll_back(log);
      continue;
    }
    if (eval_windows_ && (step_ % eval_every == 0 || step_ == steps_)) {
      const double v = evaluate();
      summary.final_val_loss = v;
      if (!summary.best_val_loss || v < *summary.best_val_loss) {
        summary.best_val_loss = v;
        summary.best_val_step = step_;
      }
      log.eval(step_, v, entropy_floor_,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(), console);
    }
    // Every `every` steps, and after the last one.
    const auto& ck = checkpointer_->settings();
    if (checkpointer_->due(step_) || (ck.every > 0 && step_ == steps_ && checkpointer_->last_saved() != step_)) {
      save_checkpoint(log);
    }
    log_checkpoints_written(log, false);
  }
  log_checkpoints_written(log, true);  // the last save, before anything reports success
  summary.steps = step_;
  summary.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  if (!tps.empty()) {
    std::vector<double> sorted = tps;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2), sorted.end());
    summary.median_tokens_per_s = sorted[sorted.size() / 2];
  }
  summary.memory = memory();
  const auto& mem = summary.memory;
  // Every rank takes part: sharded parameters are gathered unit by unit.
  const std::vector<float> final_params = parameters_to_host();
  double l2 = 0, sum = 0;
  for (float v : final_params) {
    l2 += static_cast<double>(v) * v;
    sum += v;
  }
  if (pipeline_) pipeline_parameter_sums(final_params, l2, sum);  // every stage's, the tied embedding once
  if (tp_ && !pipeline_) {
    // Tensor parallel: the shards add up over the tp group; a parameter every tp rank holds
    // whole counts its grad_norm_share (1/tp) on each, so once in all.
    double sums[2] = {0, 0};
    for (std::size_t i = 0; i < params_->size(); ++i) {
      const double share = params_->spec(i).grad_norm_share;
      const auto at = static_cast<std::size_t>(params_->offset(i));
      const auto count = static_cast<std::size_t>(shape_numel(params_->spec(i).shape));
      for (std::size_t j = at; j < at + count; ++j) {
        sums[0] += share * final_params[j] * final_params[j];
        sums[1] += share * final_params[j];
      }
    }
    float host[2] = {static_cast<float>(sums[0]), static_cast<float>(sums[1])};
    Tensor t = components_.backend->allocate({2}, DType::f32);
    components_.backend->copy_from_host(t, host);
    tp_->all_reduce(t)->wait();
    components_.backend->copy_to_host(host, t);
    l2 = host[0];
    sum = host[1];
  }
  if (files && recipe_.at("output").get_bool("final_parameters")) {
    std::ofstream(run_dir / "final_parameters.f32", std::ios::binary)
        .write(reinterpret_cast<const char*>(final_params.data()),
               static_cast<std::streamsize>(final_params.size() * sizeof(float)));
  }
  const auto n = [](double v) { return fmt::format("{:.9g}", v); };
  log.json({{"event", "\"summary\""}, {"steps", std::to_string(summary.steps)},
            {"final_loss", n(summary.final_loss)},
            {"final_val_loss", summary.final_val_loss ? n(*summary.final_val_loss) : "null"},
            {"best_val_loss", summary.best_val_loss ? n(*summary.best_val_loss) : "null"},
            {"best_val_step", std::to_string(summary.best_val_step)},
            {"entropy_floor", entropy_floor_ ? n(*entropy_floor_) : "null"},
            {"median_tokens_per_s", fmt::format("{:.6g}", summary.median_tokens_per_s)},
            {"wall_s", fmt::format("{:.3f}", summary.wall_s)}, {"dp", std::to_string(dp_size_)},
            {"compute_s", n(compute)}, {"comm_total_s", n(comm_total)}, {"comm_exposed_s", n(comm_exposed)},
            {"parameter_bytes", std::to_string(mem.parameters)}, {"gradient_bytes", std::to_string(mem.gradients)},
            {"optimizer_state_bytes", std::to_string(mem.optimizer_state)},
            {"peak_parameter_gradient_bytes", std::to_string(mem.peak_parameters_and_gradients)},
            {"peak_staging_bytes", std::to_string(mem.peak_staging)},
            {"final_param_l2", n(std::sqrt(l2))}, {"final_param_sum", n(sum)},
            {"activation_peak_bytes", std::to_string(mem.activations.saved_peak)},
            {"workspace_peak_bytes", std::to_string(mem.activations.workspace_peak)}});
  if (pipeline_) log_pipeline_summary(log, console);
  if (console) {
    log.note(fmt::format("done: {} steps in {} | median {} tok/s | final loss {:.4f}{}", summary.steps,
                         format_duration(summary.wall_s), format_count(summary.median_tokens_per_s),
                         summary.final_loss,
                         summary.final_val_loss ? fmt::format(" | val loss {:.4f}", *summary.final_val_loss) : ""));
    if (summary.best_val_loss && summary.best_val_step != summary.steps) {
      log.note(fmt::format("best val loss {:.4f} at step {}", *summary.best_val_loss, summary.best_val_step));
    }
    if (summary.final_val_loss && entropy_floor_) {
      log.note(fmt::format("val loss {:.4f} vs entropy floor {:.4f} nats/token: {:+.1f}%", *summary.final_val_loss,
                           *entropy_floor_, 100.0 * (*summary.final_val_loss / *entropy_floor_ - 1.0)));
    }
    if (dp_size_ > 1) {
      log.note(fmt::format("time (rank 0): compute {} | communication {} of which exposed {}", format_duration(compute),
                           format_duration(comm_total), format_duration(comm_exposed)));
    }
    const auto b = [](std::size_t v) { return format_bytes(static_cast<double>(v)); };
    log.note(fmt::format("memory (rank 0): parameters {} | gradients {} | optimizer state {} | saved activations peak {} "
                         "| workspace peak {}",
                         b(mem.parameters), b(mem.gradients), b(mem.optimizer_state), b(mem.activations.saved_peak),
                         b(mem.activations.workspace_peak)));
    log.note(fmt::format("run directory: {} (metrics.jsonl, recipe.yaml)", run_dir.string()));
  }
  return summary;
}

}  // namespace trainer
