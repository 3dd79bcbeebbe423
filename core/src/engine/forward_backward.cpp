#include "engine/forward_backward.hpp"

#include <stdexcept>
#include <string>

namespace trainer {

ForwardBackward::ForwardBackward(Backend& backend, Model& model, const RecomputePolicy& policy, Layout& layout,
                                 BatchShape shape)
    : backend_(backend), model_(model), layout_(layout), shape_(shape) {
  const auto specs = model.block_activations(shape);
  for (int b = 0; b < model.num_blocks(); ++b) {
    auto store = std::make_unique<BlockActivationStore>(backend, specs, saved_, workspace_);
    auto keep = policy.keep(b, model.num_blocks(), specs);
    if (keep.size() != specs.size()) {
      throw std::logic_error("recompute policy returned " + std::to_string(keep.size()) + " flags for " +
                             std::to_string(specs.size()) + " activations");
    }
    store->set_keep(std::move(keep));
    blocks_.push_back(std::move(store));
  }
  edge_ = std::make_unique<BlockActivationStore>(backend, std::vector<ActivationSpec>{}, saved_, workspace_);
}

void ForwardBackward::use_compute_copies(ParameterStore& params) {
  params_ = &params;
  residual_dtype_ = params.compute_dtype();
}

Tensor ForwardBackward::residual() {
  Tensor t = backend_.allocate(model_.residual_shape(shape_), residual_dtype_);
  saved_.add(t.bytes());
  return t;
}

void ForwardBackward::head(const StepContext& ctx, const Tensor& x, const Tensor& targets, float dloss,
                           const Tensor& dx, const Tensor& loss_sum, double loss_scale) {
  edge_->begin_pass(false);
  if (!model_.head_forward_backward_on_device(ctx, shape_, x, targets, dloss, dx, *edge_, loss_sum, loss_scale)) {
    // A model without a device path: its host value joins the sum (acc += scale * (0 + value)).
    const double value = model_.head_forward_backward(ctx, shape_, x, targets, dloss, dx, *edge_);
    Tensor t = backend_.allocate({1}, DType::f64);
    backend_.copy_from_host(t, &value);
    backend_.accumulate_sum(loss_sum, t, 1, loss_scale);
  }
  edge_->end_pass();
}

double ForwardBackward::read_scalar(const Tensor& t) {
  double value = 0;
  backend_.copy_to_host(&value, t);
  return value;
}

double ForwardBackward::train(const StepContext& ctx, const Tensor& tokens, const Tensor& targets, float dloss,
                              bool last_micro) {
  Tensor sum = backend_.allocate({1}, DType::f64);
  backend_.fill_zero(sum);
  train(ctx, tokens, targets, dloss, last_micro, sum, 1.0);
  return read_scalar(sum);
}

double ForwardBackward::evaluate(const StepContext& ctx, const Tensor& tokens, const Tensor& targets) {
  Tensor sum = backend_.allocate({1}, DType::f64);
  backend_.fill_zero(sum);
  evaluate(ctx, tokens, targets, sum);
  return read_scalar(sum);
}

void ForwardBackward::train(const StepContext& ctx, const Tensor& tokens, const Tensor& targets, float dloss,
                            bool last_micro, const Tensor& loss_sum, double loss_scale) {
  const int L = model_.num_blocks();
  layout_.begin_micro_batch(true);
  // xs[b] is block b's input; xs[L] feeds the head. Each is freed once nothing needs it.
  std::vector<Tensor> xs;
  xs.push_back(residual());
  refresh(-1);
  edge_->begin_pass(false);
  model_.embed_forward(ctx, shape_, tokens, xs[0], *edge_);
  edge_->end_pass();
  for (int b = 0; b < L; ++b) {
    xs.push_back(residual());
    auto& acts = *blocks_[static_cast<std::size_t>(b)];
    layout_.before_forward(b);
    refresh(b);
    acts.begin_pass(false);
    model_.block_forward(b, ctx, shape_, xs[b], xs[b + 1], acts);
    acts.end_forward();
    layout_.after_forward(b);
  }

  Tensor dresid = backend_.allocate(model_.residual_shape(shape_), residual_dtype_);
  workspace_.add(dresid.bytes());
  head(ctx, xs[L], targets, dloss, dresid, loss_sum, loss_scale);

  for (int b = L - 1; b >= 0; --b) {
    auto& acts = *blocks_[static_cast<std::size_t>(b)];
    saved_.sub(xs[b + 1].bytes());
    xs[b + 1] = Tensor();
    layout_.before_backward(b);
    refresh(b);
    if (!acts.all_held()) {
      acts.begin_pass(true);
      model_.block_forward(b, ctx, shape_, xs[b], Tensor(), acts);
      acts.end_pass();
    }
    acts.begin_pass(false);
    model_.block_backward(b, ctx, shape_, xs[b], dresid, acts);
    acts.release_all();
    layout_.after_backward(b, last_micro);
  }
  edge_->begin_pass(false);
  model_.embed_backward(ctx, shape_, tokens, dresid, *edge_);
  edge_->end_pass();
  saved_.sub(xs[0].bytes());
  workspace_.sub(dresid.bytes());
  layout_.end_micro_batch(true, last_micro);
}

void ForwardBackward::evaluate(const StepContext& ctx, const Tensor& tokens, const Tensor& targets,
                               const Tensor& loss_sum) {
  const int L = model_.num_blocks();
  Tensor x = backend_.allocate(model_.residual_shape(shape_), residual_dtype_);
  Tensor y = backend_.allocate(model_.residual_shape(shape_), residual_dtype_);
  layout_.begin_micro_batch(false);
  refresh(-1);
  edge_->begin_pass(false);
  model_.embed_forward(ctx, shape_, tokens, x, *edge_);
  edge_->end_pass();
  for (int b = 0; b < L; ++b) {
    auto& acts = *blocks_[static_cast<std::size_t>(b)];
    layout_.before_forward(b);
    refresh(b);
    acts.begin_pass(false);
    model_.block_forward(b, ctx, shape_, x, y, acts);
    acts.release_all();
    layout_.after_forward(b);
    std::swap(x, y);
  }
  head(ctx, x, targets, 0.0f, Tensor(), loss_sum, 1.0);
  layout_.end_micro_batch(false, false);
}

}  // namespace trainer
