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
#include "comm/watchdog.hpp"
#include "comm/watched_communicator.hpp"
#include "data/synth.hpp"
#include "engine/components.hpp"
#include "engine/optimizer_copies.hpp"
#include "plugin/registry.hpp"
#include "recipe/print.hpp"
#include "trainer/failure.hpp"

namespace trainer {
namespace {

// `local` summed over `group` (as f32, like the loss); `local` itself without a group.
double sum_over_group(Backend& backend, Communicator* group, double local) {
  if (!group) return local;
  float value = static_cast<float>(local);
  Tensor t = backend.allocate({1}, DType::f32);
  backend.copy_from_host(t, &value);
  group->all_reduce(t)->wait();
  backend.copy_to_host(&value, t);
  return value;
}

// `value` (f64 [1] on the device) summed over `group` in f32, as sum_over_group does, but
// left on the device: no host read.
void sum_on_device(Backend& backend, Communicator& group, const Tensor& value) {
  Tensor t = backend.allocate({1}, DType::f32);
  backend.convert(t, value);
  group.all_reduce(t)->wait_on_device();
  backend.convert(value, t);
}

}  // namespace

Trainer::Trainer(const ConfigNode& recipe, TrainerOptions options)
    : recipe_(recipe), options_(options), components_(create_components(recipe, options.rank.world > 1)) {
  const auto& train = recipe_.at("train");
  const auto& opt = recipe_.at("optimizer");
  const auto& parallel = recipe_.at("parallel");
  mesh_ = Mesh(static_cast<int>(parallel.get_int("dp")), static_cast<int>(parallel.get_int("tp")),
               static_cast<int>(parallel.get_int("pp")));
  if (mesh_.world() != options_.rank.world) {
    throw ConfigError(parallel.at("dp").origin(),
                      fmt::format("parallel.dp {} × tp {} × pp {} is {} but this job has {} processes",
                                  mesh_.size(Axis::dp), mesh_.size(Axis::tp), mesh_.size(Axis::pp), mesh_.world(),
                                  options_.rank.world));
  }
  rank_ = options_.rank.rank;
  coords_ = mesh_.coords(rank_);
  // The data-parallel coordinate picks the samples: the tp ranks (and pp stages) of one
  // replica see the same data.
  dp_size_ = mesh_.size(Axis::dp);
  dp_rank_ = coords_.dp;
  steps_ = train.get_int("steps");
  global_batch_ = train.get_int("global_batch");
  shape_ = {static_cast<int>(train.get_int("micro_batch")), components_.model->seq_len()};
  accum_ = global_batch_ / (static_cast<std::int64_t>(shape_.B) * dp_size_);
  seed_ = static_cast<std::uint64_t>(train.get_int("seed"));
  grad_clip_ = train.get_double("grad_clip");
  if (const auto policy = create_failure_policy(recipe_)) max_bad_steps_ = policy->max_consecutive_bad_steps();
  health_ = HealthSettings::from_recipe(recipe_);
  spikes_ = LossSpikeDetector(health_.spike_ratio, health_.spike_window);
  bad_steps_ = BadStepCounter(max_bad_steps_);
  faults_ = faults_for_attempt(parse_faults(recipe_), job_attempt());
  schedule_ = LrSchedule{opt.get_double("lr"), opt.get_double("min_lr"), opt.get_int("warmup_steps"), steps_,
                         opt.get_string("decay")};

  if (mesh_.world() > 1) {
    if (!options_.rank.store) throw std::logic_error("a multi-rank Trainer needs the job's store");
    const auto collective_timeout = std::chrono::milliseconds(
        std::llround(1000.0 * recipe_.at("watchdog").get_double("collective_timeout_s")));
    watchdog_ = comm::process_watchdog(collective_timeout);
    // One communicator per mesh axis of more than one rank; a whole-job one when the
    // world is more than the dp axis (the data barrier below must hold every rank).
    const auto connect = [&](const std::string& name, std::vector<int> ranks, bool point_to_point = false) {
      GroupSpec spec;
      spec.name = name;
      spec.ranks = std::move(ranks);
      spec.point_to_point = point_to_point;
      spec.global_rank = rank_;
      // The plugin's own timeout is a backstop behind the watchdog, so that the watchdog,
      // which names the operation and step, is the one that fires.
      spec.timeout = collective_timeout + collective_timeout / 2 + std::chrono::seconds(1);
      // Every operation is recorded and watched; a failure or a hang ends this process.
      return comm::watch_for_process(components_.comm->connect(spec, *options_.rank.store));
    };
    if (mesh_.size(Axis::dp) > 1) dp_ = connect(mesh_.group_name(Axis::dp, rank_), mesh_.group(Axis::dp, rank_));
    if (mesh_.size(Axis::tp) > 1) tp_ = connect(mesh_.group_name(Axis::tp, rank_), mesh_.group(Axis::tp, rank_));
    if (mesh_.size(Axis::pp) > 1) {
      pp_ = connect(mesh_.group_name(Axis::pp, rank_), mesh_.group(Axis::pp, rank_), /*point_to_point=*/true);
    }
    if (mesh_.size(Axis::dp) < mesh_.world()) {
      std::vector<int> all(static_cast<std::size_t>(mesh_.world()));
      for (int r = 0; r < mesh_.world(); ++r) all[static_cast<std::size_t>(r)] = r;
      world_ = connect("world", std::move(all));
    }
  }
  Communicator* const job = world_ ? world_.get() : dp_.get();
  // Rank 0 makes a synthetic corpus; the others wait for it rather than race to write it.
  if (rank_ == 0) prepare_data();
  if (job) job->barrier();
  if (rank_ != 0) prepare_data();

  auto& model = *components_.model;
  auto& backend = *components_.backend;
  // Tensor parallel: the model learns its tp group first, then declares this rank's shards.
  model.configure_parallel(ModelParallel{tp_.get(), coords_.tp, mesh_.size(Axis::tp),
                                         recipe_.at("parallel").get_bool("sequence_parallel")});
  params_ = std::make_unique<ParameterStore>(backend, pipeline_parameters(model.parameters()));
  params_->initialize(seed_);
  // precision bf16: f32 master values, gradients and optimizer state; bf16 compute copies
  // and activations (checks.cpp refuses it for backends without bf16 ops).
  const bool bf16 = recipe_.has("precision") && recipe_.at("precision").text() == "bf16";
  if (bf16) params_->set_compute_dtype(DType::bf16);
  model.bind(*params_);
  components_.layout->setup(LayoutContext{backend, *params_, dp_.get(), components_.overlap->plan()});
  params_->reset_peak_resident();  // the full initial copy is a start-up cost, not the steady state
  replicas_ = true;  // the replica check needs every parameter on every rank (fsdp keeps shards)
  for (std::size_t u = 0; u < params_->units().size(); ++u) replicas_ = replicas_ && params_->unit_values(u);
  const auto targets = components_.layout->optimizer_targets();
  components_.optimizer->init(backend, targets);
  if (bf16 && components_.optimizer->writes_compute()) optimizer_written_units_ = units_written_by(*params_, targets);
  setup_checkpoints(targets);
  pass_ = std::make_unique<ForwardBackward>(backend, model, *components_.recompute, *components_.layout, shape_);
  setup_pipeline();
  if (bf16) pass_->use_compute_copies(*params_);
  // Paths that do not go through ForwardBackward (the pipeline executor) read the copies of
  // resident units as they are: refresh those eagerly; ForwardBackward refreshes gathered ones.
  params_->refresh_compute_resident();
  tokens_ = backend.allocate({shape_.B, shape_.T}, DType::i32);
  targets_ = backend.allocate({shape_.B, shape_.T}, DType::i32);
}

Trainer::~Trainer() = default;

void Trainer::setup_checkpoints(const std::vector<OptimizerTarget>& targets, bool rollback) {
  auto& layout = *components_.layout;
  // Replicated targets (every rank holds everything) split the writing by parameter;
  // sharded ones are written by their owner.
  std::int64_t owned = 0;
  for (const auto& t : targets) owned += t.value.numel();
  const double coverage = sum_over_ranks(static_cast<double>(owned) / static_cast<double>(params_->numel()));
  checkpoint::Manifest header;
  header.seed = seed_;
  header.world = mesh_.world();
  header.dp = dp_size_;
  header.tp = mesh_.size(Axis::tp);
  header.pp = mesh_.size(Axis::pp);
  header.layout = recipe_.at("layout").get_string("plugin");
  header.recipe = recipe::print_recipe(recipe_);
  auto settings = checkpoint::CheckpointSettings::from_recipe(recipe_);
  if (rollback) settings.resume = true;
  for (const auto& f : faults_) {
    if (f.kind == Fault::Kind::kill_during_save && f.rank == rank_ && !f.consumed) settings.kill_during_save = f.step;
  }
  // Each element is written once in the job: by one rank of a replicating dp group, by tp
  // rank 0 where every tp rank holds a parameter whole, and the tied embedding by the first
  // pipeline stage (the last stage's copy is loaded, not written).
  checkpoint::RankInfo who{rank_, mesh_.world(), options_.rank.store, dp_size_ > 1 && coverage > 1.5,
                           dp_rank_, dp_size_, coords_.tp, mesh_.size(Axis::tp)};
  if (scheduler_ && pp_tied_ && pp_schedule_.rank_of(pp_schedule_.chunks() - 1) == coords_.pp &&
      pp_schedule_.rank_of(0) != coords_.pp) {
    who.foreign = pipeline::embedding_parameter_count(params_->specs());
  }
  checkpointer_ = std::make_unique<checkpoint::Checkpointer>(
      settings, *components_.backend, checkpoint::bind_state(*params_, targets, *components_.optimizer), who,
      std::move(header));
  if (const auto& from = checkpointer_->resume_point()) {
    // The targets hold what this rank owns (all of it under replicate, the shard under
    // zero1/zero2/fsdp); the layout then makes the rest agree, as after an update:
    // zero1/zero2 all-gather the owned ranges, fsdp's shards are the parameters.
    checkpointer_->load();
    layout.after_optimizer_step();
    params_->invalidate_compute();
    params_->refresh_compute_resident();
    layout.take_comm_times();
    step_ = from->manifest.step;
    resumed_from_ = from->dir.string();
  }
}

void Trainer::save_checkpoint(RunLog& log) {
  const double blocked = checkpointer_->save(step_);
  spikes_.settle(step_);
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
  if (!std::filesystem::exists(train_path) && data.has("synth") && rank_ == 0) {
    const auto& s = data.at("synth");
    data::SynthSpec spec;
    spec.vocab = static_cast<int>(s.get_int("vocab"));
    spec.order = static_cast<int>(s.get_int("order"));
    spec.branching = static_cast<int>(s.get_int("branching"));
    spec.train_tokens = static_cast<std::uint64_t>(s.get_int("train_tokens"));
    spec.val_tokens = static_cast<std::uint64_t>(s.get_int("val_tokens"));
    spec.seed = static_cast<std::uint64_t>(s.get_int("seed"));
    spec.concentration = s.get_double("concentration");
    if (!options_.quiet && rank_ == 0) {
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
    if (f.kind == kind && f.step == step && !f.consumed && (rank < 0 || f.rank == rank)) return &f;
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
  comm::FlightRecorder::process().set_step(step_ + 1);  // what the flight record says each op belongs to
  auto& layout = *components_.layout;
  const std::size_t n = static_cast<std::size_t>(shape_.B) * static_cast<std::size_t>(shape_.T);
  std::vector<std::int32_t> inputs(n), targets(n);
  const double tokens_per_step = static_cast<double>(global_batch_) * shape_.T;
  const float dloss = static_cast<float>(1.0 / tokens_per_step);

  if (const Fault* f = fault_at(Fault::Kind::bitflip, step_ + 1, rank_)) inject_bitflip(*f);
  // A spike fault makes this rank's loss of the step, and so its gradient, kSpikeFactor times larger.
  const double spike_scale = fault_at(Fault::Kind::spike, step_ + 1, rank_) ? kSpikeFactor : 1.0;
  layout.zero_grads();
  auto& backend = *components_.backend;
  // The step's loss sum and squared gradient norm stay on the device (sums[0], sums[1]) until
  // one read after the backward: each host read waits for everything queued before it.
  // The pipeline executor sums its loss on the host.
  Tensor sums;
  double loss_sum = 0;
  if (pipeline_) {
    loss_sum = spike_scale * pipeline_micro_batches(static_cast<float>(spike_scale) * dloss);
  } else {
    sums = backend.allocate({2}, DType::f64);
    backend.fill_zero(sums);
  }
  for (std::int64_t m = 0; !pipeline_ && m < accum_; ++m) {
    // Global sample positions: across the ranks, micro-batch m covers samples
    // [m*dp*B, (m+1)*dp*B) of the step, rank r the r-th B of them. A dp=1 run with the
    // same global batch sees the same samples with the same dropout masks.
    const std::int64_t global_micro = m * dp_size_ + dp_rank_;
    sampler_->fill_micro_batch(step_, global_micro * shape_.B, shape_.B, inputs, targets);
    load_micro_batch(inputs, targets);
    StepContext ctx{seed_, step_, static_cast<int>(global_micro), true};
    pass_->train(ctx, tokens_, targets_, static_cast<float>(spike_scale) * dloss, m + 1 == accum_, sums.view(0, {1}),
                 spike_scale);
  }

  StepResult r;
  r.step = step_;
  if (pipeline_) {
    r.loss = sum_over_ranks(pipeline_->sum_over_stages(loss_sum)) / tokens_per_step;
  } else if (dp_) {
    sum_on_device(backend, *dp_, sums.view(0, {1}));  // as sum_over_ranks, in the same place among the collectives
  }
  // An injected NaN lands after the gradients were reduced, so only its rank sees it;
  // every rank knows the fault list, and on such a step they vote, so all of them skip.
  // (An organic non-finite value is seen by all ranks: the loss and the norm are global,
  // and replicated gradients are equal after the all-reduce.)
  const bool nan_step = fault_at(Fault::Kind::nan, step_ + 1, -1) != nullptr;
  const bool injected = fault_at(Fault::Kind::nan, step_ + 1, rank_) != nullptr;
  if (injected) inject_nan_gradient();
  // The layout sums over the dp group; the tp ranks hold different shards (and count their
  // replicated parameters 1/tp each, ParameterSpec::grad_norm_share), so they add up too.
  if (pipeline_) {
    r.grad_norm = std::sqrt(sum_over_group(backend, tp_.get(), pipeline_grad_sum_squares()));
  } else {
    layout.grad_sum_squares_on_device(sums.view(1, {1}), backend);
    if (tp_) sum_on_device(backend, *tp_, sums.view(1, {1}));
    double host[2] = {0, 0};
    backend.copy_to_host(host, sums);  // the step's one read of the device
    r.loss = host[0] / tokens_per_step;
    r.grad_norm = std::sqrt(host[1]);
  }
  // Communication waited for on the device is done by now; its times are read here, and an
  // operation that failed meanwhile throws here, before the update.
  const CommTimes reduced = layout.take_comm_times();
  if (nan_step && sum_over_ranks(injected || !std::isfinite(r.grad_norm) ? 1.0 : 0.0) > 0) {
    r.grad_norm = std::numeric_limits<double>::quiet_NaN();
  }
  r.lr = schedule_.at(step_);
  // One global check before the update: a non-finite gradient anywhere skips the step.
  r.skipped = !std::isfinite(r.grad_norm) || !std::isfinite(r.loss);
  // A loss far above its running mean skips the update too (the loss is global: every
  // rank decides alike).
  if (!r.skipped) r.spike = spikes_.judge(r.loss);
  r.skipped = r.skipped || r.spike.has_value();
  if (!r.skipped) spikes_.record(step_ + 1, r.loss);
  if (!r.skipped) {
    if (grad_clip_ > 0 && r.grad_norm > grad_clip_) layout.scale_grads(static_cast<float>(grad_clip_ / r.grad_norm));
    components_.optimizer->step(static_cast<float>(r.lr), step_ + 1);
    layout.after_optimizer_step();
    params_->invalidate_compute(optimizer_written_units_);
    params_->refresh_compute_resident();
  }
  peak_staging_ = layout.staging_bytes();
  r.comm = layout.take_comm_times();  // what after_optimizer_step gathered
  r.comm.total_s += reduced.total_s;
  r.comm.exposed_s += reduced.exposed_s;
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
  Tensor device_sum;  // without a pipeline the batches' losses add up on the device, read once
  if (!pipeline_) {
    device_sum = components_.backend->allocate({1}, DType::f64);
    components_.backend->fill_zero(device_sum);
  }
  for (int b = 0; b < batches; ++b) {
    eval_windows_->fill(static_cast<std::int64_t>(b) * shape_.B, shape_.B, inputs, targets);
    load_micro_batch(inputs, targets);
    StepContext ctx{seed_, step_, b, false};
    if (pipeline_) {
      sum += pipeline_->evaluate(ctx, tokens_, targets_);
    } else {
      pass_->evaluate(ctx, tokens_, targets_, device_sum);
    }
  }
  if (pipeline_) sum = pipeline_->sum_over_stages(sum);  // the loss is on the last stage
  if (!pipeline_) components_.backend->copy_to_host(&sum, device_sum);
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
  m.activations = pipeline_ ? pipeline_->memory() : pass_->memory();
  return m;
}

}  // namespace trainer
