// Model: parameters plus explicit per-block forward and backward, with each block's saved
// activations named and sized so recompute policies can choose what to keep.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/parameters.hpp"
#include "trainer/plugin.hpp"
#include "trainer/rng.hpp"
#include "trainer/tensor.hpp"
#include "trainer/tensor_parallel.hpp"

namespace trainer {

struct BatchShape {
  int B = 0;  // sequences in the micro-batch
  int T = 0;  // tokens per sequence
};

// Identifies one forward/backward of one micro-batch; dropout keys derive from it so that
// recompute and resume draw the same masks.
struct StepContext {
  std::uint64_t seed = 0;
  std::int64_t step = 0;
  int micro = 0;  // global micro-batch index within the step
  bool training = true;
  RngKey dropout_key(int site) const {
    return RngKey{seed, rng_stream(static_cast<std::uint64_t>(step), static_cast<std::uint64_t>(micro),
                                   static_cast<std::uint64_t>(site))};
  }
};

struct ActivationSpec {
  std::string name;
  Shape shape;
  DType dtype = DType::f32;
  // True when, given the block input and the non-cheap activations, it is recomputed with
  // no matrix product (layernorm outputs, softmax probabilities, GELU outputs).
  bool cheap = false;
};

// The engine's store of one block's activations for one micro-batch. A forward pass
// allocates each activation on first get(); the engine then frees those the recompute
// policy does not keep. Before backward, a recompute pass (recomputing() == true) calls the
// same forward code: get() returns held tensors and missing() tells what to recompute.
class BlockActivations {
 public:
  virtual ~BlockActivations();
  virtual Tensor get(std::string_view name) = 0;
  // True if any of `names` was not held when this pass started (so it must be computed).
  virtual bool missing(std::initializer_list<std::string_view> names) const = 0;
  virtual bool recomputing() const = 0;
  // Working memory that lives until the current pass ends.
  virtual Tensor scratch(const Shape& shape, DType dtype = DType::f32) = 0;
};

class Model : public Plugin {
 public:
  // Tensor parallel: the tp group the layers are split over. Called once, before
  // parameters(), which then declares this rank's shards. The default accepts tp 1 only.
  virtual void configure_parallel(const ModelParallel& parallel);
  virtual std::vector<ParameterSpec> parameters() const = 0;
  // Called once the store is allocated; the model keeps the reference.
  virtual void bind(const ParameterStore& params) = 0;

  virtual int num_blocks() const = 0;
  virtual int seq_len() const = 0;
  virtual int vocab_size() const = 0;
  virtual Shape residual_shape(BatchShape shape) const = 0;  // activations between blocks
  virtual std::vector<ActivationSpec> block_activations(BatchShape shape) const = 0;
  virtual double flops_per_token() const = 0;  // forward + backward, for MFU figures

  // tokens/targets: i32 [B,T] on the backend's device.
  virtual void embed_forward(const StepContext& ctx, BatchShape shape, const Tensor& tokens,
                             const Tensor& x0, BlockActivations& acts) = 0;
  // dx: gradient w.r.t. the embedding output; accumulates parameter gradients.
  virtual void embed_backward(const StepContext& ctx, BatchShape shape, const Tensor& tokens,
                              const Tensor& dx, BlockActivations& acts) = 0;
  // Writes `out` unless acts.recomputing(), in which case it only refills activations.
  virtual void block_forward(int block, const StepContext& ctx, BatchShape shape, const Tensor& x,
                             const Tensor& out, BlockActivations& acts) = 0;
  // dresid holds d(loss)/d(block output) on entry and d(loss)/d(block input) on exit.
  virtual void block_backward(int block, const StepContext& ctx, BatchShape shape,
                              const Tensor& x, const Tensor& dresid, BlockActivations& acts) = 0;
  // Returns the summed loss over the B*T targets. If dx is not empty, also writes
  // d(dloss * summed loss)/dx into dx and accumulates the head's parameter gradients.
  virtual double head_forward_backward(const StepContext& ctx, BatchShape shape, const Tensor& x,
                                       const Tensor& targets, float dloss, const Tensor& dx,
                                       BlockActivations& acts) = 0;
  // The same, but loss_scale times the summed loss is added to loss_sum (f64 [1] on the
  // backend's device, Backend::accumulate_sum) instead of being returned, so that the host
  // does not wait for the device once per micro-batch: the engine reads the step's loss once.
  // Returns false, having done nothing, when the model has no such path (the default); the
  // engine then calls head_forward_backward and adds its value itself.
  virtual bool head_forward_backward_on_device(const StepContext& ctx, BatchShape shape, const Tensor& x,
                                               const Tensor& targets, float dloss, const Tensor& dx,
                                               BlockActivations& acts, const Tensor& loss_sum, double loss_scale);
  // Inference (sampling): writes the next-token logits for every position of x into
  // `logits` (f32 [B,T,vocab_size()]). The default throws: a model that cannot sample.
  virtual void head_logits(const StepContext& ctx, BatchShape shape, const Tensor& x, const Tensor& logits,
                           BlockActivations& acts);
};

}  // namespace trainer
