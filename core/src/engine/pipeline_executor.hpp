// PipelineExecutor: runs one pipeline rank's action list for a step — forward and backward
// of its chunks for each micro-batch, activations and gradients sent to and received from
// the neighbouring stages over the pp communicator — and measures what the rank did.
#pragma once
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "engine/activation_store.hpp"
#include "engine/forward_backward.hpp"
#include "engine/memory_meter.hpp"
#include "pipeline/message.hpp"
#include "pipeline/stage_plan.hpp"
#include "trainer/backend.hpp"
#include "trainer/comm.hpp"
#include "trainer/layout.hpp"
#include "trainer/model.hpp"
#include "trainer/pipeline.hpp"
#include "trainer/recompute.hpp"

namespace trainer {

// One step's figures on this rank, in seconds.
struct PipelineStepTimes {
  double span_s = 0;       // first action to the end of the stage barrier after the last
  double compute_s = 0;    // inside forward and backward actions
  double recv_wait_s = 0;  // blocked in receives
  int peak_in_flight = 0;  // (micro-batch, chunk) forwards held for their backward
  double start_s = 0;       // from the start barrier to the first action (the layout's step prologue)
  double bubble() const { return span_s > 0 ? (span_s - compute_s) / span_s : 0.0; }
  // Per action of this rank's list, in its order, what replaying the schedule with this
  // step's real costs needs (pipeline::replay). took: the action's own seconds, from the end
  // of the action before (the loop's bookkeeping included) less the time blocked in receives;
  // computing: the part of it inside forward/backward; at: when a send started or a
  // receive's message was in hand, and asked: when a receive started waiting, both in seconds
  // since the start barrier (-1 where it does not apply). Every rank's step starts at the same
  // barrier, so the times of a send on one rank and of its receive on the other compare.
  std::vector<double> took_s, computing_s, at_s, asked_s;
};

class PipelineExecutor {
 public:
  // Fills micro-batch m's tokens and targets (i32 [B,T] on the device) and says which
  // dropout masks it draws.
  using MicroBatchSource = std::function<StepContext(int micro, const Tensor& tokens, const Tensor& targets)>;

  PipelineExecutor(Backend& backend, Model& model, const RecomputePolicy& policy, Layout& layout, BatchShape shape,
                   PipelineSchedule schedule, pipeline::StagePlan plan, Communicator& pp,
                   ParameterStore& params, bool tied_head);

  // One step's micro-batches: accumulates parameter gradients of dloss * (summed loss) and,
  // on the last stage, returns the summed loss (0 on the others). With a tied head, the
  // embedding gradients of the first and last stage are summed before the layout reduces
  // them over dp.
  double train(const MicroBatchSource& source, float dloss);
  // Forward only through every chunk; the summed loss on the last stage, 0 elsewhere.
  double evaluate(const StepContext& ctx, const Tensor& tokens, const Tensor& targets);

  // Sums a scalar over the pipeline ranks (every one gets the same value).
  double sum_over_stages(double local);
  // The squared norm of the embedding parameters' reduced gradient that this rank counts
  // twice (the last stage's copy under a tied head), to subtract from the layout's sum.
  double duplicate_grad_sum_squares(const std::vector<OptimizerTarget>& targets, Communicator* dp);
  // Whether parameter i of this rank's store is a copy another stage owns (tied head).
  bool is_duplicate(std::size_t param) const { return duplicate_embedding_ && param < embedding_params_; }

  const PipelineSchedule& schedule() const { return schedule_; }
  const pipeline::StagePlan& plan() const { return plan_; }
  int rank() const { return rank_; }
  const PipelineStepTimes& last_step() const { return times_; }
  ActivationMemory memory() const { return {saved_.peak(), workspace_.peak()}; }

 private:
  using Message = pipeline::Message;
  struct InFlight {  // one micro-batch on one chunk, from its forward to its backward
    std::vector<Tensor> xs;  // each block's input; the chunk's output until it is sent
    std::vector<std::unique_ptr<BlockActivationStore>> acts;
    Tensor dresid;
  };
  struct MicroData {
    Tensor tokens, targets;
    StepContext ctx;
  };

  Tensor residual();
  void release(Tensor& t);
  std::unique_ptr<BlockActivationStore> take_store(int block);
  void give_store(int block, std::unique_ptr<BlockActivationStore> store);
  MicroData& micro_data(int micro);
  Tensor receive(const Message& m, int peer);
  void send(const Tensor& t, int peer);
  void reap_sends(bool wait);
  // Each returns the seconds it computed (its time less what it waited for its input).
  double forward(int micro, int chunk);
  double backward(int micro, int chunk);
  void sum_tied_embedding_grads();

  Backend& backend_;
  Model& model_;
  const RecomputePolicy& policy_;
  Layout& layout_;
  BatchShape shape_;
  PipelineSchedule schedule_;
  pipeline::StagePlan plan_;
  Communicator& pp_;
  ParameterStore& params_;
  int rank_ = 0;
  bool first_ = false, last_ = false;
  bool exchange_embedding_ = false;   // tied head: this rank sums the embedding gradients with its peer
  bool duplicate_embedding_ = false;  // tied head: the first and last stage both hold the embedding
  std::size_t embedding_params_ = 0;
  std::vector<ActivationSpec> specs_;
  MemoryMeter saved_, workspace_;
  std::unique_ptr<BlockActivationStore> edge_;
  std::map<int, std::vector<std::unique_ptr<BlockActivationStore>>> spare_stores_;  // per block
  std::map<std::pair<int, int>, InFlight> in_flight_;                              // (micro, chunk)
  std::map<int, MicroData> micro_;
  // Messages arrive from a peer in the order it sends them: what each peer sends this rank.
  std::map<int, std::vector<Message>> incoming_;
  std::map<int, std::size_t> next_incoming_;
  std::map<Message, Tensor> arrived_;
  std::map<Message, std::size_t> recv_action_;  // a message to this rank -> its receive's index in the list
  std::map<std::pair<int, int>, Tensor> gradients_out_;  // (micro, chunk) -> input gradient awaiting its send
  std::chrono::steady_clock::time_point step_start_;
  std::size_t action_ = 0;  // index of the action running
  std::deque<std::pair<std::unique_ptr<CommWork>, Tensor>> sends_;
  const MicroBatchSource* source_ = nullptr;
  float dloss_ = 0;
  double loss_ = 0;
  Tensor loss_on_device_;  // f64 [1]: the last stage's summed loss, read once per step
  int micro_batches_ = 0;
  PipelineStepTimes times_;
};

}  // namespace trainer
