// Layout: how parameters, gradients and optimizer state are placed across the data-parallel
// ranks (replicate, zero1, zero2, fsdp), and OverlapPolicy: when their communication is
// issued. The engine calls the layout's hooks around every block; the layout decides what
// to gather, reduce, shard or free, and reads the overlap plan to decide when.
#pragma once
#include <cstddef>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/comm.hpp"
#include "trainer/optimizer.hpp"
#include "trainer/parameters.hpp"
#include "trainer/plugin.hpp"

namespace trainer {

struct OverlapPlan {
  // Reduce each gradient bucket as soon as its last gradient exists (on the last
  // micro-batch of a step), while backward continues; otherwise all after backward.
  bool reduce_during_backward = false;
  std::size_t bucket_bytes = 25u << 20;
  // Sharded parameters: gather this many blocks ahead of the one computing (0: on demand).
  int prefetch_depth = 0;
};

class OverlapPolicy : public Plugin {
 public:
  virtual OverlapPlan plan() const = 0;
};

// Communication time of one step, as the layout saw it.
struct CommTimes {
  double total_s = 0;    // the operations' own durations
  double exposed_s = 0;  // time the step spent waiting for them
};

struct LayoutContext {
  Backend& backend;
  ParameterStore& params;
  Communicator* dp = nullptr;  // the data-parallel group; null when dp == 1
  OverlapPlan overlap;
};

class Layout : public Plugin {
 public:
  virtual void setup(const LayoutContext& context) = 0;
  // The ranges this rank's optimizer updates: everything, or this rank's shard.
  virtual std::vector<OptimizerTarget> optimizer_targets() = 0;
  // The hooks of one micro-batch, in order: begin; before/after_forward per block; then
  // before/after_backward per block in reverse; end. Embedding and head parameters
  // (block -1) are needed from begin to end. `training` is false for evaluation, which has
  // no backward hooks.
  virtual void begin_micro_batch(bool training) = 0;
  virtual void before_forward(int block) = 0;
  virtual void after_forward(int block) = 0;
  virtual void before_backward(int block) = 0;
  virtual void after_backward(int block, bool last_micro) = 0;
  virtual void end_micro_batch(bool training, bool last_micro) = 0;
  // After the last micro-batch: the squared norm of the reduced gradient, over the whole
  // model (the same value on every rank).
  virtual double grad_sum_squares() = 0;
  // The same value left on the device: out (f64 [1], the backend's device) receives it without
  // a host read where the layout can (the engine reads it back with the step's loss). The
  // default stores grad_sum_squares() through the host.
  virtual void grad_sum_squares_on_device(const Tensor& out, Backend& backend);
  virtual void scale_grads(float factor) = 0;
  virtual void after_optimizer_step() = 0;
  virtual void zero_grads() = 0;
  virtual CommTimes take_comm_times() = 0;  // and reset
  // Bytes the layout itself holds (shards, staging), beside the store's resident units.
  virtual std::size_t parameter_bytes() const = 0;  // persistent parameter shards
  virtual std::size_t gradient_bytes() const = 0;   // persistent gradient shards
  virtual std::size_t staging_bytes() const = 0;    // peak of communication buffers so far
};

}  // namespace trainer
