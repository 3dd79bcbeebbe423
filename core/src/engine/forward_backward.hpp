// ForwardBackward: one micro-batch through the model's embedding, blocks and head and back,
// applying the recompute policy per block and metering activation memory.
#pragma once
#include <memory>
#include <vector>

#include "engine/activation_store.hpp"
#include "engine/memory_meter.hpp"
#include "trainer/backend.hpp"
#include "trainer/layout.hpp"
#include "trainer/model.hpp"
#include "trainer/recompute.hpp"

namespace trainer {

struct ActivationMemory {
  std::size_t saved_peak = 0;      // block inputs + activations held for backward
  std::size_t workspace_peak = 0;  // short-lived buffers inside one op sequence
};

class ForwardBackward {
 public:
  ForwardBackward(Backend& backend, Model& model, const RecomputePolicy& policy, Layout& layout, BatchShape shape);

  // Accumulates parameter gradients of dloss * (summed loss), and adds loss_scale * (summed
  // loss) to loss_sum (f64 [1] on the backend's device) without reading it back: the engine
  // reads a step's loss once. `last_micro`: the step's last micro-batch, after which
  // gradients are reduced.
  void train(const StepContext& ctx, const Tensor& tokens, const Tensor& targets, float dloss, bool last_micro,
             const Tensor& loss_sum, double loss_scale);
  // The same, returning the summed loss (a host read).
  double train(const StepContext& ctx, const Tensor& tokens, const Tensor& targets, float dloss, bool last_micro);
  // Forward only (no dropout, nothing kept); adds the summed loss to loss_sum.
  void evaluate(const StepContext& ctx, const Tensor& tokens, const Tensor& targets, const Tensor& loss_sum);
  // The same, returning the summed loss (a host read).
  double evaluate(const StepContext& ctx, const Tensor& tokens, const Tensor& targets);

  ActivationMemory memory() const { return {saved_.peak(), workspace_.peak()}; }
  BatchShape shape() const { return shape_; }

  // Mixed precision: block-boundary buffers in the store's compute dtype, and each unit's
  // compute copy refreshed after the layout made the unit present (before its forward and
  // its backward). Without this call everything is f32, as before.
  void use_compute_copies(ParameterStore& params);

 private:
  Tensor residual();  // a block-boundary buffer, metered as saved
  // The model's head; its loss (times loss_scale) joins loss_sum on the device.
  void head(const StepContext& ctx, const Tensor& x, const Tensor& targets, float dloss, const Tensor& dx,
            const Tensor& loss_sum, double loss_scale);
  double read_scalar(const Tensor& t);
  void refresh(int block) {
    if (params_) params_->refresh_compute_block(block);
  }

  Backend& backend_;
  Model& model_;
  Layout& layout_;
  BatchShape shape_;
  MemoryMeter saved_, workspace_;
  std::vector<std::unique_ptr<BlockActivationStore>> blocks_;
  std::unique_ptr<BlockActivationStore> edge_;  // embedding and head: workspace only
  ParameterStore* params_ = nullptr;
  DType residual_dtype_ = DType::f32;
};

}  // namespace trainer
