// Pipeline schedules as data: for each pipeline rank, the ordered list of what it does with
// each micro-batch (forward, backward, and the sends/receives between neighbouring stages).
// A schedule plugin (kind `schedule`: gpipe, 1f1b, interleaved) builds the lists; the engine
// checks them, predicts their bubble, prints them (`trainer plan`) and executes them.
#pragma once
#include <string>
#include <vector>

#include "trainer/plugin.hpp"

namespace trainer {

// The model is cut into `stages × virtual_stages` chunks of consecutive blocks. Chunk c runs
// on pipeline rank c % stages (interleaved: rank r holds chunks r, r + stages, ...), so a
// micro-batch's forward visits chunks 0, 1, ..., C-1 and its backward C-1, ..., 0.
struct PipelineAction {
  enum class Kind { forward, backward, send_activation, recv_activation, send_gradient, recv_gradient };
  Kind kind = Kind::forward;
  int micro = 0;  // micro-batch index within the step, 0 ... micro_batches-1
  int chunk = 0;  // the model chunk (virtual stage) computed, or whose input/output travels
  int peer = -1;  // pipeline rank sent to or received from; -1 for forward/backward
};

// send_activation(m, c): chunk c's output of micro-batch m goes to chunk c+1's rank, which
// posts recv_activation(m, c+1) before forward(m, c+1). send_gradient(m, c): the gradient
// of chunk c's input goes to chunk c-1's rank, which posts recv_gradient(m, c-1) before
// backward(m, c-1). Sends do not wait for the receiver; receives do.
struct PipelineSchedule {
  std::string name;
  int stages = 1;          // pipeline ranks (parallel.pp)
  int virtual_stages = 1;  // chunks per rank
  int micro_batches = 1;   // per step and data-parallel rank
  std::vector<std::vector<PipelineAction>> ranks;  // one action list per pipeline rank
  int chunks() const { return stages * virtual_stages; }
  int rank_of(int chunk) const { return chunk % stages; }
};

const char* pipeline_action_name(PipelineAction::Kind kind);

class PipelineScheduler : public Plugin {
 public:
  ~PipelineScheduler() override;
  virtual int virtual_stages() const = 0;  // chunks per rank this schedule wants
  // Empty when the schedule can run `micro_batches` over `stages` ranks; otherwise why not,
  // phrased as a recipe error ("1f1b needs at least pp = 4 micro-batches, ...").
  virtual std::string check(int stages, int micro_batches) const = 0;
  virtual PipelineSchedule build(int stages, int micro_batches) const = 0;
};

}  // namespace trainer
