// Trainer: a validated recipe turned into a running single-rank training loop — data,
// plugins, parameters, optimizer, schedule, evaluation, logging.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/sampler.hpp"
#include "data/token_shard.hpp"
#include "engine/components.hpp"
#include "engine/faults.hpp"
#include "engine/forward_backward.hpp"
#include "engine/health.hpp"
#include "engine/loss_spike.hpp"
#include "engine/lr_schedule.hpp"
#include "engine/pipeline_executor.hpp"
#include "engine/mesh.hpp"
#include "engine/run_log.hpp"
#include "trainer/config.hpp"
#include "trainer/parameters.hpp"

namespace trainer::checkpoint {
class Checkpointer;
}
namespace trainer::comm {
class Watchdog;
}

namespace trainer {

class FailurePolicy;

// Thrown by Trainer::run after too many consecutive skipped steps; the process exits 3.
class BadStepsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
inline constexpr int kBadStepsExitCode = 3;
// A `spike` fault multiplies its rank's loss and gradient of the step by this.
inline constexpr double kSpikeFactor = 10.0;

struct StepResult {
  std::int64_t step = 0;  // 0-based index of the step just taken
  double loss = 0;        // mean over the global batch's tokens
  double grad_norm = 0;   // before clipping
  double lr = 0;
  bool skipped = false;
  std::optional<double> spike;  // a loss spike skipped the update: the loss's ratio to its running mean
  CommTimes comm;         // this rank's communication during the step
};

// Bytes held by this rank. parameters and gradients are measured between steps (what stays
// resident); peak_parameters_and_gradients includes units gathered or reduced in flight.
struct MemoryReport {
  std::size_t parameters = 0;
  std::size_t gradients = 0;
  std::size_t optimizer_state = 0;
  std::size_t peak_parameters_and_gradients = 0;
  std::size_t peak_staging = 0;
  ActivationMemory activations;
};

struct TrainSummary {
  std::int64_t steps = 0;
  double final_loss = 0;
  std::optional<double> final_val_loss;
  // The lowest validation loss of the run and its step: what a run that overfits is judged
  // by (as nanoGPT keeps its best checkpoint), beside the last one.
  std::optional<double> best_val_loss;
  std::int64_t best_val_step = 0;
  std::optional<double> entropy_floor;
  double median_tokens_per_s = 0;
  double wall_s = 0;
  MemoryReport memory;
  std::filesystem::path run_dir;
};

// This process's place in a multi-process job (world 1: a single process).
struct RankContext {
  int rank = 0;
  int world = 1;
  Store* store = nullptr;  // the job's rendezvous store; required when world > 1
};

struct TrainerOptions {
  bool quiet = false;         // no console output (tests)
  bool write_run_dir = true;  // metrics.jsonl and recipe.yaml (rank 0 only)
  RankContext rank;
  // run() stops once this many steps are done, as if interrupted there (-1: never).
  std::int64_t stop_after = -1;
};

class Trainer {
 public:
  explicit Trainer(const ConfigNode& recipe, TrainerOptions options = {});
  ~Trainer();

  StepResult train_step();  // one optimizer step; gradients stay readable until the next
  double evaluate();        // mean validation loss over eval_batches micro-batches
  TrainSummary run();       // the whole loop with logging and evaluation

  const ParameterStore& parameters() const { return *params_; }
  // The full, current parameter values in store order (gathered from shards if needed).
  std::vector<float> parameters_to_host();
  int dp_rank() const { return dp_rank_; }  // this rank's dp coordinate on the mesh
  int dp_size() const { return dp_size_; }
  const Mesh& mesh() const { return mesh_; }
  MeshCoords coords() const { return coords_; }
  // The communicator of this rank's group along each axis; null where the axis has one rank.
  Communicator* dp_comm() const { return dp_.get(); }
  Communicator* tp_comm() const { return tp_.get(); }
  Communicator* pp_comm() const { return pp_.get(); }
  Backend& backend() { return *components_.backend; }
  MemoryReport memory() const;
  std::int64_t next_step() const { return step_; }

 private:
  void prepare_data();
  // Checkpoints: bind this rank's targets and state, and resume from the newest good one.
  // rollback: go back to the newest intact checkpoint even under checkpoint.resume: never.
  void setup_checkpoints(const std::vector<OptimizerTarget>& targets, bool rollback = false);
  void save_checkpoint(RunLog& log);
  void log_checkpoints_written(RunLog& log, bool wait);
  double sum_over_ranks(double local);
  void load_micro_batch(const std::vector<std::int32_t>& inputs, const std::vector<std::int32_t>& targets);
  // The active fault of `kind` at 1-based `step` for `rank` (-1: any rank), if any.
  const Fault* fault_at(Fault::Kind kind, std::int64_t step, int rank) const;
  void inject_nan_gradient();
  // Health (trainer_health.cpp): bad steps, replica checks, their faults, rollback.
  bool replica_check_due(std::int64_t steps_done) const;
  void inject_bitflip(const Fault& f);
  void consume_faults_through(std::int64_t step);
  // Reports a skipped step; true when the policy rolls back. Throws BadStepsError at the limit.
  bool on_bad_step(const StepResult& r, RunLog& log);
  // Compares the replicas; true when they diverged and the policy rolls back (else throws).
  bool check_replicas(RunLog& log);
  [[noreturn]] void abort_run(RunLog& log, const std::string& why);
  // Every rank reloads the newest intact checkpoint and continues from its step.
  void roll_back(RunLog& log);
  // Pipeline parallel (trainer_pipeline.cpp), when parallel.pp > 1.
  struct PipelineFigures {  // one stage's figures, one entry per step after the first
    std::vector<double> bubble;     // measured
    std::vector<double> predicted;  // the schedule replayed with the step's measured costs
    std::vector<double> compute_only;  // the same with messages free: what the message costs add
    int peak_in_flight = 0;
  };
  // This rank's parameters: all of them without a pipeline; else its stage's (and the
  // schedule and stage plan, checked against the recipe).
  std::vector<ParameterSpec> pipeline_parameters(std::vector<ParameterSpec> all);
  void setup_pipeline();  // the executor, once the store and layout exist
  double pipeline_micro_batches(float dloss);
  double pipeline_grad_sum_squares();  // over every stage, the tied embedding counted once
  void pipeline_parameter_sums(const std::vector<float>& values, double& sum_squares, double& sum);
  void log_pipeline_step(RunLog& log);
  void log_pipeline_summary(RunLog& log, bool console);

  ConfigNode recipe_;
  TrainerOptions options_;
  Components components_;
  std::unique_ptr<ParameterStore> params_;
  std::unique_ptr<Communicator> dp_, tp_, pp_, world_;  // world_: only when tp × pp > 1
  std::unique_ptr<comm::Watchdog> watchdog_;  // after the communicators: destroyed before them
  std::unique_ptr<ForwardBackward> pass_;
  std::unique_ptr<PipelineScheduler> scheduler_;  // pipeline parallel only
  std::unique_ptr<PipelineExecutor> pipeline_;
  PipelineSchedule pp_schedule_;
  pipeline::StagePlan pp_plan_;
  bool pp_tied_ = false;
  std::vector<PipelineFigures> pp_measured_;  // per stage of this replica
  std::vector<double> pp_transfer_s_, pp_receive_s_;  // per step after the first: message costs
  std::optional<data::TokenShard> train_shard_, val_shard_;
  std::unique_ptr<data::BatchSampler> sampler_;
  std::unique_ptr<data::EvalWindows> eval_windows_;
  std::optional<double> entropy_floor_;
  LrSchedule schedule_;
  Tensor tokens_, targets_;
  BatchShape shape_;
  std::int64_t steps_ = 0, global_batch_ = 0, accum_ = 0, step_ = 0;
  std::uint64_t seed_ = 0;
  Mesh mesh_{1, 1, 1};
  MeshCoords coords_;
  int rank_ = 0;  // in the job; rank 0 speaks for it (console, run directory)
  int dp_rank_ = 0, dp_size_ = 1;
  std::size_t peak_staging_ = 0;
  double grad_clip_ = 0;
  std::string resumed_from_;  // the checkpoint this run resumed from, if any
  std::vector<Fault> faults_;  // active in the job's first attempt only
  int max_bad_steps_ = 3;      // consecutive skipped steps before run() gives up; 0: never
  HealthSettings health_;
  LossSpikeDetector spikes_;
  BadStepCounter bad_steps_{3};
  bool replicas_ = false;  // every rank holds all parameters between steps (not fsdp)
  // Units whose bf16 compute copies the optimizer's step rewrites (every parameter of the unit
  // a whole target with its copy): no separate refresh after a step.
  std::vector<bool> optimizer_written_units_;
  std::unique_ptr<checkpoint::Checkpointer> checkpointer_;  // last: its destructor waits for a write
};

}  // namespace trainer
