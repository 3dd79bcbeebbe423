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
#include "data/synth.hpp"
#include "engine/components.hpp"
#include "plugin/registry.hpp"
#include "recipe/print.hpp"
#include "trainer/failure.hpp"

namespace trainer {

std::vector<Fault> parse_faults(const ConfigNode& recipe) {
  std::vector<Fault> faults;
  if (!recipe.has("faults")) return faults;
  for (const auto& item : recipe.at("faults").items()) {
    Fault f;
    f.step = item.get_int("step");
    f.rank = static_cast<int>(item.get_int("rank"));
    const std::string& kind = item.get_string("kind");
    f.kind = kind == "kill" ? Fault::Kind::kill : kind == "nan" ? Fault::Kind::nan : Fault::Kind::slow;
    f.seconds = item.get_double("seconds");
    faults.push_back(f);
  }
  return faults;
}

int job_attempt() {
  const char* text = std::getenv("TRAINER_ATTEMPT");
  return text && *text ? std::atoi(text) : 0;
}

std::unique_ptr<FailurePolicy> create_failure_policy(const ConfigNode& recipe) {
  if (!recipe.has("failure")) return nullptr;
  const ConfigNode& node = recipe.at("failure");
  const auto& descriptor = find_plugin(PluginKind::failure, node.get_string("plugin"), recipe_plugin_path(recipe));
  return create_plugin<FailurePolicy>(descriptor, PluginContext{node, nullptr});
}

Trainer::Trainer(const ConfigNode& recipe, TrainerOptions options)
    : recipe_(recipe), options_(options), components_(create_components(recipe, options.rank.world > 1)) {
  const auto& train = recipe_.at("train");
  const auto& opt = recipe_.at("optimizer");
  const auto& parallel = recipe_.at("parallel");
  dp_size_ = static_cast<int>(parallel.get_int("dp"));
  if (dp_size_ != options_.rank.world) {
    throw ConfigError(parallel.at("dp").origin(),
                      fmt::format("parallel.dp is {} but this job has {} processes", dp_size_, options_.rank.world));
  }
  dp_rank_ = options_.rank.rank;
  steps_ = train.get_int("steps");
  global_batch_ = train.get_int("global_batch");
  shape_ = {static_cast<int>(train.get_int("micro_batch")), components_.model->seq_len()};
  accum_ = global_batch_ / (static_cast<std::int64_t>(shape_.B) * dp_size_);
  seed_ = static_cast<std::uint64_t>(train.get_int("seed"));
  grad_clip_ = train.get_double("grad_clip");
  if (const auto policy = create_failure_policy(recipe_)) max_bad_steps_ = policy->max_consecutive_bad_steps();
  if (job_attempt() == 0) faults_ = parse_faults(recipe_);
  schedule_ = LrSchedule{opt.get_double("lr"), opt.get_double("min_lr"), opt.get_int("warmup_steps"), steps_,
                         opt.get_string("decay")};

  if (dp_size_ > 1) {
    if (!options_.rank.store) throw std::logic_error("a multi-rank Trainer needs the job's store");
    GroupSpec spec;
    spec.name = "dp";
    for (int r = 0; r < dp_size_; ++r) spec.ranks.push_back(r);
    spec.global_rank = dp_rank_;
    dp_ = components_.comm->connect(spec, *options_.rank.store);
  }
  // Rank 0 makes a synthetic corpus; the others wait for it rather than race to write it.
  if (dp_rank_ == 0) prepare_data();
  if (dp_) dp_->barrier();
  if (dp_rank_ != 0) prepare_data();

  auto& model = *components_.model;
  auto& backend = *components_.backend;
  params_ = std::make_unique<ParameterStore>(backend, model.parameters());
  params_->initialize(seed_);
  model.bind(*params_);
  components_.layout->setup(LayoutContext{backend, *params_, dp_.get(), components_.overlap->plan()});
  params_->reset_peak_resident();  // the full initial copy is a start-up cost, not the steady state
  const auto targets = components_.layout->optimizer_targets();
  components_.optimizer->init(backend, targets);
  setup_checkpoints(targets);
  pass_ = std::make_unique<ForwardBackward>(backend, model, *components_.recompute, *components_.layout, shape_);
  tokens_ = backend.allocate({shape_.B, shape_.T}, DType::i32);
  targets_ = backend.allocate({shape_.B, shape_.T}, DType::i32);
}

Trainer::~Trainer() = default;

void Trainer::setup_checkpoints(const std::vector<OptimizerTarget>& targets) {
  auto& layout = *components_.layout;
  // Replicated targets (every rank holds everything) split the writing by parameter;
  // sharded ones are written by their owner.
  std::int64_t owned = 0;
  for (const auto& t : targets) owned += t.value.numel();
  const double coverage = sum_over_ranks(static_cast<double>(owned) / static_cast<double>(params_->numel()));
  checkpoint::Manifest header;
  header.seed = seed_;
  header.world = dp_size_;
  header.layout = recipe_.at("layout").get_string("plugin");
  header.recipe = recipe::print_recipe(recipe_);
  checkpointer_ = std::make_unique<checkpoint::Checkpointer>(
      checkpoint::CheckpointSettings::from_recipe(recipe_), *components_.backend,
      checkpoint::bind_state(*params_, targets, *components_.optimizer),
      checkpoint::RankInfo{dp_rank_, dp_size_, options_.rank.store, dp_size_ > 1 && coverage > 1.5}, std::move(header));
  if (const auto& from = checkpointer_->resume_point()) {
    // The targets hold what this rank owns (all of it under replicate, the shard under
    // zero1/zero2/fsdp); the layout then makes the rest agree, as after an update:
    // zero1/zero2 all-gather the owned ranges, fsdp's shards are the parameters.
    checkpointer_->load();
    layout.after_optimizer_step();
    layout.take_comm_times();
    step_ = from->manifest.step;
    resumed_from_ = from->dir.string();
  }
}

void Trainer::save_checkpoint(RunLog& log) {
  const double blocked = checkpointer_->save(step_);
  log.json({{"event", "\"checkpoint\""}, {"step", std::to_string(step_)},
            {"blocked_ms", fmt::format("{:.3f}", 1000.0 * blocked)},
            {"async", checkpointer_->settings().async ? "true" : "false"}});
}

void Trainer::log_checkpoints_written(RunLog& log, bool wait) {
  if (wait) checkpointer_->finish();
  if (const auto r = checkpointer_->take_finished()) {
    log.json({{"event", "\"checkpoint_written\""}, {"step", std::to_string(r->step)},
              {"write_ms", fmt::format("{:.3f}", 1000.0 * r->write_s)}, {"shard_bytes", std::to_string(r->bytes)},
              {"dir", RunLog::json_string((checkpointer_->settings().dir / checkpoint::step_dir_name(r->step)).string())}});
  }
}

void Trainer::prepare_data() {
  const auto& data = recipe_.at("data");
  const std::filesystem::path train_path = data.get_string("train");
  const std::string val_text = data.has("val") ? data.get_string("val") : std::string();
  if (!std::filesystem::exists(train_path) && data.has("synth") && dp_rank_ == 0) {
    const auto& s = data.at("synth");
    data::SynthSpec spec;
    spec.vocab = static_cast<int>(s.get_int("vocab"));
    spec.order = static_cast<int>(s.get_int("order"));
    spec.branching = static_cast<int>(s.get_int("branching"));
    spec.train_tokens = static_cast<std::uint64_t>(s.get_int("train_tokens"));
    spec.val_tokens = static_cast<std::uint64_t>(s.get_int("val_tokens"));
    spec.seed = static_cast<std::uint64_t>(s.get_int("seed"));
    spec.concentration = s.get_double("concentration");
    if (!options_.quiet && dp_rank_ == 0) {
      fmt::print("data: {} is absent; writing a synthetic Markov corpus there (vocab {}, order {}, branching {})\n",
                 train_path.string(), spec.vocab, spec.order, spec.branching);
    }
    const auto r = data::synth_corpus(spec, train_path.parent_path());
    if (std::filesystem::absolute(r.train) != std::filesystem::absolute(train_path)) {
      throw ConfigError(data.at("train").origin(), "a synthesized corpus is written as train.bin and val.bin; "
                                                   "name data.train '" + r.train.string() + "'");
    }
  }
  if (!std::filesystem::exists(train_path)) {
    throw ConfigError(data.at("train").origin(),
                      "training data '" + train_path.string() +
                          "' does not exist; make it with `trainer data prepare` or `trainer data synth`, "
                          "or add a data.synth section");
  }
  train_shard_.emplace(train_path);
  const int vocab = components_.model->vocab_size();
  if (train_shard_->max_token() >= static_cast<std::uint32_t>(vocab)) {
    throw ConfigError(recipe_.at("model").origin(),
                      fmt::format("the data holds token {} but model.vocab is {}; raise model.vocab",
                                  train_shard_->max_token(), vocab));
  }
  sampler_ = std::make_unique<data::BatchSampler>(*train_shard_, shape_.T, seed_);
  if (!val_text.empty()) {
    val_shard_.emplace(val_text);
    eval_windows_ = std::make_unique<data::EvalWindows>(*val_shard_, shape_.T);
  }
  entropy_floor_ = data::read_entropy_floor(train_path.parent_path());
}

void Trainer::load_micro_batch(const std::vector<std::int32_t>& inputs, const std::vector<std::int32_t>& targets) {
  components_.backend->copy_from_host(tokens_, inputs.data());
  components_.backend->copy_from_host(targets_, targets.data());
}

double Trainer::sum_over_ranks(double local) {
  if (!dp_) return local;
  float value = static_cast<float>(local);
  Tensor t = components_.backend->allocate({1}, DType::f32);
  components_.backend->copy_from_host(t, &value);
  dp_->all_reduce(t)->wait();
  components_.backend->copy_to_host(&value, t);
  return value;
}

const Fault* Trainer::fault_at(Fault::Kind kind, std::int64_t step, int rank) const {
  for (const auto& f : faults_) {
    if (f.kind == kind && f.step == step && (rank < 0 || f.rank == rank)) return &f;
  }
  return nullptr;
}

// A NaN in the first element of this rank's first gradient unit, where the rank holds it
// (replicate, zero1); sharded layouts may have released it, and the vote in train_step
// carries the fault to every rank either way.
void Trainer::inject_nan_gradient() {
  const Tensor& grad = params_->unit_grads(0);
  if (!grad) return;
  std::vector<float> host(static_cast<std::size_t>(grad.numel()));
  components_.backend->copy_to_host(host.data(), grad);
  host[0] = std::numeric_limits<float>::quiet_NaN();
  components_.backend->copy_from_host(grad, host.data());
}

StepResult Trainer::train_step() {
  auto& layout = *components_.layout;
  const std::size_t n = static_cast<std::size_t>(shape_.B) * static_cast<std::size_t>(shape_.T);
  std::vector<std::int32_t> inputs(n), targets(n);
  const double tokens_per_step = static_cast<double>(global_batch_) * shape_.T;
  const float dloss = static_cast<float>(1.0 / tokens_per_step);

  layout.zero_grads();
  double loss_sum = 0;
  for (std::int64_t m = 0; m < accum_; ++m) {
    // Global sample positions: across the ranks, micro-batch m covers samples
    // [m*dp*B, (m+1)*dp*B) of the step, rank r the r-th B of them. A dp=1 run with the
    // same global batch sees the same samples with the same dropout masks.
    const std::int64_t global_micro = m * dp_size_ + dp_rank_;
    sampler_->fill_micro_batch(step_, global_micro * shape_.B, shape_.B, inputs, targets);
    load_micro_batch(inputs, targets);
    StepContext ctx{seed_, step_, static_cast<int>(global_micro), true};
    loss_sum += pass_->train(ctx, tokens_, targets_, dloss, m + 1 == accum_);
  }

  StepResult r;
  r.step = step_;
  r.loss = sum_over_ranks(loss_sum) / tokens_per_step;
  // An injected NaN lands after the gradients were reduced, so only its rank sees it;
  // every rank knows the fault list, and on such a step they vote, so all of them skip.
  // (An organic non-finite value is seen by all ranks: the loss and the norm are global,
  // and replicated gradients are equal after the all-reduce.)
  const bool nan_step = fault_at(Fault::Kind::nan, step_ + 1, -1) != nullptr;
  const bool injected = fault_at(Fault::Kind::nan, step_ + 1, dp_rank_) != nullptr;
  if (injected) inject_nan_gradient();
  r.grad_norm = std::sqrt(layout.grad_sum_squares());
  if (nan_step && sum_over_ranks(injected || !std::isfinite(r.grad_norm) ? 1.0 : 0.0) > 0) {
    r.grad_norm = std::numeric_limits<double>::quiet_NaN();
  }
  r.lr = schedule_.at(step_);
  // One global check before the update: a non-finite gradient anywhere skips the step.
  r.skipped = !std::isfinite(r.grad_norm) || !std::isfinite(r.loss);
  if (!r.skipped) {
    if (grad_clip_ > 0 && r.grad_norm > grad_clip_) layout.scale_grads(static_cast<float>(grad_clip_ / r.grad_norm));
    components_.optimizer->step(static_cast<float>(r.lr), step_ + 1);
    layout.after_optimizer_step();
  }
  peak_staging_ = layout.staging_bytes();
  r.comm = layout.take_comm_times();
  ++step_;
  return r;
}

std::vector<float> Trainer::parameters_to_host() {
  // A forward-only pass over every block makes sharded units present one at a time.
  auto& layout = *components_.layout;
  std::vector<float> host(static_cast<std::size_t>(params_->numel()));
  layout.begin_micro_batch(false);
  for (std::size_t u = 0; u < params_->units().size(); ++u) {
    const auto& unit = params_->units()[u];
    if (unit.block >= 0) layout.before_forward(unit.block);
    components_.backend->copy_to_host(host.data() + unit.offset, params_->unit_values(u));
    if (unit.block >= 0) layout.after_forward(unit.block);
  }
  layout.end_micro_batch(false, false);
  return host;
}

double Trainer::evaluate() {
  if (!eval_windows_) return std::nan("");
  const int batches = static_cast<int>(recipe_.at("train").get_int("eval_batches"));
  const std::size_t n = static_cast<std::size_t>(shape_.B) * static_cast<std::size_t>(shape_.T);
  std::vector<std::int32_t> inputs(n), targets(n);
  double sum = 0;
  for (int b = 0; b < batches; ++b) {
    eval_windows_->fill(static_cast<std::int64_t>(b) * shape_.B, shape_.B, inputs, targets);
    load_micro_batch(inputs, targets);
    StepContext ctx{seed_, step_, b, false};
    sum += pass_->evaluate(ctx, tokens_, targets_);
  }
  return sum / (static_cast<double>(batches) * static_cast<double>(n));
}

MemoryReport Trainer::memory() const {
  MemoryReport m;
  const auto& layout = *components_.layout;
  for (std::size_t u = 0; u < params_->units().size(); ++u) {
    m.parameters += params_->unit_values(u) ? params_->unit_values(u).bytes() : 0;
    m.gradients += params_->unit_grads(u) ? params_->unit_grads(u).bytes() : 0;
  }
  m.parameters += layout.parameter_bytes();
  m.gradients += layout.gradient_bytes();
  m.peak_parameters_and_gradients = params_->peak_resident_bytes() + layout.parameter_bytes() + layout.gradient_bytes();
  m.peak_staging = peak_staging_;
  m.optimizer_state = components_.optimizer->state_bytes();
  m.activations = pass_->memory();
  return m;
}

TrainSummary Trainer::run() {
  const auto& train = recipe_.at("train");
  const std::int64_t log_every = train.get_int("log_every"), eval_every = train.get_int("eval_every");
  const std::filesystem::path run_dir = recipe_.at("output").get_string("dir");
  // Rank 0 speaks for the job; the others' figures reach it through the collectives.
  const bool console = !options_.quiet && dp_rank_ == 0;
  const bool files = options_.write_run_dir && dp_rank_ == 0;
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
  }

  log.json({{"event", "\"start\""}, {"steps", std::to_string(steps_)}, {"dp", std::to_string(dp_size_)},
            {"layout", RunLog::json_string(recipe_.at("layout").get_string("plugin"))},
            {"overlap", RunLog::json_string(recipe_.at("overlap").get_string("plugin"))}});
  for (const auto& w : checkpointer_->warnings()) {
    log.json({{"event", "\"checkpoint_warning\""}, {"message", RunLog::json_string(w)}});
    if (dp_rank_ == 0) fmt::print(stderr, "warning: {}\n", w);  // also under --quiet
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
  std::int64_t bad_steps = 0;  // consecutive skipped steps
  while (step_ < steps_ && (options_.stop_after < 0 || step_ < options_.stop_after)) {
    if (const Fault* f = fault_at(Fault::Kind::kill, step_ + 1, dp_rank_)) {
      fmt::print(stderr, "fault: rank {} kills itself at the start of step {}\n", f->rank, f->step);
      std::fflush(stdout);
      std::fflush(stderr);
      std::raise(SIGKILL);
    }
    if (const Fault* f = fault_at(Fault::Kind::slow, step_ + 1, dp_rank_)) {
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
    summary.final_loss = r.loss;
    if (r.skipped) {
      ++bad_steps;
      std::string why;
      std::string injected_by;
      for (const auto& f : faults_) {
        if (f.kind != Fault::Kind::nan || f.step != step_) continue;
        if (!injected_by.empty()) injected_by += ", ";
        injected_by += std::to_string(f.rank);
      }
      if (!injected_by.empty()) {
        why = fmt::format("rank {} injected a NaN into its gradient (faults)", injected_by);
      } else if (!std::isfinite(r.loss)) {
        why = "all ranks see a non-finite global loss";
      } else {
        why = "all ranks see a non-finite global gradient norm";
      }
      log.json({{"event", "\"bad_step\""}, {"step", std::to_string(step_)}, {"reason", RunLog::json_string(why)}});
      if (dp_rank_ == 0) fmt::print(stderr, "warning: step {}: update skipped: {}\n", step_, why);  // also under --quiet
      if (max_bad_steps_ > 0 && bad_steps >= max_bad_steps_) {
        const std::string message =
            fmt::format("trainer: aborting: {} consecutive steps with non-finite gradients (steps {}-{})", bad_steps,
                        step_ - bad_steps + 1, step_);
        log.json({{"event", "\"abort\""}, {"step", std::to_string(step_)}, {"message", RunLog::json_string(message)}});
        if (dp_rank_ == 0) fmt::print(stderr, "{}\n", message);
        throw BadStepsError(message);
      }
    } else {
      bad_steps = 0;
    }
    if (eval_windows_ && (step_ % eval_every == 0 || step_ == steps_)) {
      const double v = evaluate();
      summary.final_val_loss = v;
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
  if (files && recipe_.at("output").get_bool("final_parameters")) {
    std::ofstream(run_dir / "final_parameters.f32", std::ios::binary)
        .write(reinterpret_cast<const char*>(final_params.data()),
               static_cast<std::streamsize>(final_params.size() * sizeof(float)));
  }
  const auto n = [](double v) { return fmt::format("{:.9g}", v); };
  log.json({{"event", "\"summary\""}, {"steps", std::to_string(summary.steps)},
            {"final_loss", n(summary.final_loss)},
            {"final_val_loss", summary.final_val_loss ? n(*summary.final_val_loss) : "null"},
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
  if (console) {
    log.note(fmt::format("done: {} steps in {} | median {} tok/s | final loss {:.4f}{}", summary.steps,
                         format_duration(summary.wall_s), format_count(summary.median_tokens_per_s),
                         summary.final_loss,
                         summary.final_val_loss ? fmt::format(" | val loss {:.4f}", *summary.final_val_loss) : ""));
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
