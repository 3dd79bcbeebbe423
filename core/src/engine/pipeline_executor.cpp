#include "engine/pipeline_executor.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

namespace trainer {
namespace {

using Clock = std::chrono::steady_clock;
using Kind = PipelineAction::Kind;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double seconds_between(Clock::time_point t0, Clock::time_point t1) { return std::chrono::duration<double>(t1 - t0).count(); }

}  // namespace

PipelineExecutor::PipelineExecutor(Backend& backend, Model& model, const RecomputePolicy& policy, Layout& layout,
                                   BatchShape shape, PipelineSchedule schedule, pipeline::StagePlan plan,
                                   Communicator& pp, ParameterStore& params, bool tied_head)
    : backend_(backend), model_(model), policy_(policy), layout_(layout), shape_(shape),
      schedule_(std::move(schedule)), plan_(std::move(plan)), pp_(pp), params_(params), rank_(pp.rank()) {
  if (pp.size() != schedule_.stages) throw std::logic_error("pipeline schedule and pp group differ in size");
  first_ = schedule_.rank_of(0) == rank_;
  last_ = schedule_.rank_of(schedule_.chunks() - 1) == rank_;
  if (tied_head && first_ != last_) {
    // The leading block -1 unit is the embedding on both ends (stage_parameters' order).
    if (params_.units().empty() || params_.units()[0].block >= 0) {
      throw std::logic_error("pipeline: a tied head needs the embedding unit on the first and last stage");
    }
    exchange_embedding_ = true;
    duplicate_embedding_ = last_;
    embedding_params_ = params_.units()[0].last;
  }
  specs_ = model.block_activations(shape);
  edge_ = std::make_unique<BlockActivationStore>(backend, std::vector<ActivationSpec>{}, saved_, workspace_);
  for (int r = 0; r < schedule_.stages; ++r) {
    for (const auto& a : schedule_.ranks[static_cast<std::size_t>(r)]) {
      if ((a.kind == Kind::send_activation || a.kind == Kind::send_gradient) && a.peer == rank_) {
        incoming_[r].push_back({a.kind == Kind::send_activation, a.micro, a.chunk});
      }
    }
  }
  const auto& mine = schedule_.ranks[static_cast<std::size_t>(rank_)];
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const auto& a = mine[i];
    if (a.kind == Kind::recv_activation) recv_action_[{true, a.micro, a.chunk - 1}] = i;
    if (a.kind == Kind::recv_gradient) recv_action_[{false, a.micro, a.chunk + 1}] = i;
  }
}

Tensor PipelineExecutor::residual() {
  // Block-boundary buffers (and the messages between stages) in the compute dtype: bf16
  // activations travel as bf16.
  Tensor t = backend_.allocate(model_.residual_shape(shape_), params_.compute_dtype());
  saved_.add(t.bytes());
  return t;
}

void PipelineExecutor::release(Tensor& t) {
  if (t) saved_.sub(t.bytes());
  t = Tensor();
}

std::unique_ptr<BlockActivationStore> PipelineExecutor::take_store(int block) {
  auto& spare = spare_stores_[block];
  if (!spare.empty()) {
    auto s = std::move(spare.back());
    spare.pop_back();
    return s;
  }
  auto s = std::make_unique<BlockActivationStore>(backend_, specs_, saved_, workspace_);
  auto keep = policy_.keep(block, model_.num_blocks(), specs_);
  if (keep.size() != specs_.size()) {
    throw std::logic_error("recompute policy returned " + std::to_string(keep.size()) + " flags for " +
                           std::to_string(specs_.size()) + " activations");
  }
  s->set_keep(std::move(keep));
  return s;
}

void PipelineExecutor::give_store(int block, std::unique_ptr<BlockActivationStore> store) {
  spare_stores_[block].push_back(std::move(store));
}

PipelineExecutor::MicroData& PipelineExecutor::micro_data(int micro) {
  auto it = micro_.find(micro);
  if (it != micro_.end()) return it->second;
  MicroData d;
  d.tokens = backend_.allocate({shape_.B, shape_.T}, DType::i32);
  d.targets = backend_.allocate({shape_.B, shape_.T}, DType::i32);
  d.ctx = (*source_)(micro, d.tokens, d.targets);
  return micro_.emplace(micro, std::move(d)).first->second;
}

// The peer's messages to this rank come in its send order; one this rank needs later is
// kept until then (two ranks may exchange activations and gradients in different orders).
Tensor PipelineExecutor::receive(const Message& wanted, int peer) {
  auto& expected = incoming_[peer];
  auto& next = next_incoming_[peer];
  while (arrived_.find(wanted) == arrived_.end()) {
    if (next >= expected.size()) throw std::logic_error("pipeline: waiting for a message the peer never sends");
    const Message m = expected[next++];
    Tensor t = residual();
    auto work = pp_.recv(t, peer);
    const auto t0 = Clock::now();
    work->wait();
    const auto t1 = Clock::now();
    times_.recv_wait_s += seconds_between(t0, t1);
    if (const auto at = recv_action_.find(m); at != recv_action_.end()) {
      times_.asked_s[at->second] = seconds_between(step_start_, t0);
      times_.at_s[at->second] = seconds_between(step_start_, t1);
    }
    arrived_.emplace(m, t);
  }
  auto it = arrived_.find(wanted);
  Tensor t = it->second;
  arrived_.erase(it);
  return t;
}

void PipelineExecutor::send(const Tensor& t, int peer) {
  // The message is on its way once handed over: on a busy machine the communication thread
  // may send it while this thread is still returning from send().
  times_.at_s[action_] = seconds_since(step_start_);
  sends_.emplace_back(pp_.send(t, peer), t);
}

void PipelineExecutor::reap_sends(bool wait) {
  while (!sends_.empty() && (wait || sends_.front().first->ready())) {
    sends_.front().first->wait();
    release(sends_.front().second);
    sends_.pop_front();
  }
}

double PipelineExecutor::forward(int micro, int chunk) {
  const auto t0 = Clock::now();
  const double waited_before = times_.recv_wait_s;
  auto& f = in_flight_[{micro, chunk}];
  const int b0 = plan_.begin(chunk), b1 = plan_.end(chunk);
  const MicroData& d = micro_data(micro);
  if (chunk == 0) {
    f.xs.push_back(residual());
    edge_->begin_pass(false);
    model_.embed_forward(d.ctx, shape_, d.tokens, f.xs[0], *edge_);
    edge_->end_pass();
  } else {
    f.xs.push_back(receive({true, micro, chunk - 1}, schedule_.rank_of(chunk - 1)));
  }
  for (int b = b0; b < b1; ++b) {
    const auto i = static_cast<std::size_t>(b - b0);
    f.xs.push_back(residual());
    f.acts.push_back(take_store(b));
    auto& acts = *f.acts.back();
    layout_.before_forward(b);
    params_.refresh_compute_block(b);
    acts.begin_pass(false);
    model_.block_forward(b, d.ctx, shape_, f.xs[i], f.xs[i + 1], acts);
    acts.end_forward();
    layout_.after_forward(b);
  }
  if (chunk == schedule_.chunks() - 1) {
    // The head runs forward and backward at once: the loss now, the gradient kept for backward.
    f.dresid = backend_.allocate(model_.residual_shape(shape_), params_.compute_dtype());
    workspace_.add(f.dresid.bytes());
    edge_->begin_pass(false);
    // The loss stays on the device until the step's end (one host read, not one per micro-batch).
    if (!loss_on_device_) {
      loss_on_device_ = backend_.allocate({1}, DType::f64);
      backend_.fill_zero(loss_on_device_);
    }
    if (!model_.head_forward_backward_on_device(d.ctx, shape_, f.xs.back(), d.targets, dloss_, f.dresid, *edge_,
                                                loss_on_device_, 1.0)) {
      loss_ += model_.head_forward_backward(d.ctx, shape_, f.xs.back(), d.targets, dloss_, f.dresid, *edge_);
    }
    edge_->end_pass();
    release(f.xs.back());
    f.xs.pop_back();
  }
  // Compute time: the action's time less what it spent waiting for its input.
  const double busy = seconds_since(t0) - (times_.recv_wait_s - waited_before);
  times_.compute_s += busy;
  times_.peak_in_flight = std::max(times_.peak_in_flight, static_cast<int>(in_flight_.size()));
  return busy;
}

double PipelineExecutor::backward(int micro, int chunk) {
  const auto t0 = Clock::now();
  const double waited_before = times_.recv_wait_s;
  auto it = in_flight_.find({micro, chunk});
  if (it == in_flight_.end()) throw std::logic_error("pipeline: backward before forward");
  InFlight& f = it->second;
  const int b0 = plan_.begin(chunk), b1 = plan_.end(chunk);
  const MicroData& d = micro_data(micro);
  if (chunk < schedule_.chunks() - 1) {
    f.dresid = receive({false, micro, chunk + 1}, schedule_.rank_of(chunk + 1));
    saved_.sub(f.dresid.bytes());  // metered as workspace from here on, like the head's
    workspace_.add(f.dresid.bytes());
  }
  const bool last_micro = micro == micro_batches_ - 1;
  for (int b = b1 - 1; b >= b0; --b) {
    const auto i = static_cast<std::size_t>(b - b0);
    auto& acts = *f.acts[i];
    layout_.before_backward(b);
    params_.refresh_compute_block(b);
    if (!acts.all_held()) {
      acts.begin_pass(true);
      model_.block_forward(b, d.ctx, shape_, f.xs[i], Tensor(), acts);
      acts.end_pass();
    }
    acts.begin_pass(false);
    model_.block_backward(b, d.ctx, shape_, f.xs[i], f.dresid, acts);
    acts.release_all();
    give_store(b, std::move(f.acts[i]));
    layout_.after_backward(b, last_micro);
  }
  for (auto& x : f.xs) release(x);
  if (chunk == 0) {
    edge_->begin_pass(false);
    model_.embed_backward(d.ctx, shape_, d.tokens, f.dresid, *edge_);
    edge_->end_pass();
    workspace_.sub(f.dresid.bytes());
  } else {
    // Sent from the workspace; the send's completion frees it (metered as saved until then).
    workspace_.sub(f.dresid.bytes());
    saved_.add(f.dresid.bytes());
  }
  // The input gradient waits for the list's send_gradient action.
  if (chunk > 0) gradients_out_[{micro, chunk}] = f.dresid;
  in_flight_.erase(it);
  const double busy = seconds_since(t0) - (times_.recv_wait_s - waited_before);
  times_.compute_s += busy;
  return busy;
}

double PipelineExecutor::train(const MicroBatchSource& source, float dloss) {
  source_ = &source;
  dloss_ = dloss;
  loss_ = 0;
  loss_on_device_ = Tensor();
  micro_batches_ = schedule_.micro_batches;
  const auto& actions = schedule_.ranks[static_cast<std::size_t>(rank_)];
  times_ = PipelineStepTimes{};
  times_.took_s.assign(actions.size(), 0.0);
  times_.computing_s.assign(actions.size(), 0.0);
  times_.at_s.assign(actions.size(), -1.0);
  times_.asked_s.assign(actions.size(), -1.0);
  for (auto& [peer, n] : next_incoming_) n = 0;
  // Every stage starts the step's pipeline together: what the previous step left uneven
  // (the optimizer, rank 0 writing the log) is not one stage waiting for another's schedule.
  pp_.barrier();
  step_start_ = Clock::now();
  // The embedding and head units stay present for the whole step (fsdp gathers them once).
  layout_.begin_micro_batch(true);
  params_.refresh_compute_resident();  // bf16: copies of units the layout just gathered
  auto mark = Clock::now();  // the end of the action before: here, of the step's prologue
  times_.start_s = seconds_between(step_start_, mark);
  for (action_ = 0; action_ < actions.size(); ++action_) {
    const auto& a = actions[action_];
    const double waited_before = times_.recv_wait_s;
    double computing = 0;
    reap_sends(false);
    switch (a.kind) {
      case Kind::forward: computing = forward(a.micro, a.chunk); break;
      case Kind::backward: computing = backward(a.micro, a.chunk); break;
      case Kind::send_activation: {
        // The chunk's output: the last entry of its inputs, sent and then no longer needed.
        auto& f = in_flight_.at({a.micro, a.chunk});
        Tensor out = f.xs.back();
        f.xs.pop_back();
        send(out, a.peer);
        break;
      }
      case Kind::send_gradient: {
        auto g = gradients_out_.find({a.micro, a.chunk});
        if (g == gradients_out_.end()) throw std::logic_error("pipeline: gradient sent before its backward");
        send(g->second, a.peer);
        gradients_out_.erase(g);
        break;
      }
      // Receives happen inside forward/backward, when the data is needed; messages that
      // arrive earlier than needed are kept (receive()).
      case Kind::recv_activation:
      case Kind::recv_gradient: break;
    }
    const auto now = Clock::now();
    times_.took_s[action_] = seconds_between(mark, now) - (times_.recv_wait_s - waited_before);
    times_.computing_s[action_] = computing;
    mark = now;
  }
  reap_sends(true);
  if (!arrived_.empty() || !in_flight_.empty() || !gradients_out_.empty()) {
    throw std::logic_error("pipeline: step ended with data in flight");
  }
  micro_.clear();
  if (loss_on_device_) {
    double on_device = 0;
    backend_.copy_to_host(&on_device, loss_on_device_);
    loss_ += on_device;
    loss_on_device_ = Tensor();
  }
  // The step's pipeline ends when the slowest stage is done: what a rank waits for here is
  // bubble too (the first stage's last backward, the last stage's idle tail).
  pp_.barrier();
  times_.span_s = seconds_since(step_start_);
  // Like the dp reduction below, the tied embedding's gradient sum follows the pipeline.
  if (exchange_embedding_) sum_tied_embedding_grads();
  layout_.end_micro_batch(true, true);
  return loss_;
}

void PipelineExecutor::sum_tied_embedding_grads() {
  const auto& unit = params_.units()[0];
  const Tensor& grad = params_.unit_grads(0);
  const int peer = first_ ? schedule_.rank_of(schedule_.chunks() - 1) : schedule_.rank_of(0);
  Tensor mine = backend_.allocate({unit.numel}, DType::f32);
  Tensor theirs = backend_.allocate({unit.numel}, DType::f32);
  backend_.copy(mine, grad);
  // The first stage sends first, the last receives first: a comm whose first send on a
  // connection waits for the peer's receive (nccl sets connections up on first use) never
  // has both ends waiting in a send.
  if (first_) {
    auto sent = pp_.send(mine, peer);
    pp_.recv(theirs, peer)->wait();
    sent->wait();
  } else {
    auto got = pp_.recv(theirs, peer);
    auto sent = pp_.send(mine, peer);
    got->wait();
    sent->wait();
  }
  // Both ends compute g_first + g_last (addition commutes): bitwise the same sum.
  backend_.axpby(grad, 1.0f, theirs, 1.0f, unit.numel);
}

double PipelineExecutor::sum_over_stages(double local) {
  float value = static_cast<float>(local);
  Tensor t = backend_.allocate({1}, DType::f32);
  backend_.copy_from_host(t, &value);
  pp_.all_reduce(t)->wait();
  backend_.copy_to_host(&value, t);
  return value;
}

double PipelineExecutor::duplicate_grad_sum_squares(const std::vector<OptimizerTarget>& targets, Communicator* dp) {
  // Collective over dp when the targets are shards: every rank of the stage takes part.
  if (!duplicate_embedding_) return 0.0;
  double sum = 0;
  std::int64_t owned = 0, total = 0;
  for (std::size_t i = 0; i < embedding_params_; ++i) total += shape_numel(params_.spec(i).shape);
  for (const auto& t : targets) {
    for (std::size_t i = 0; i < embedding_params_; ++i) {
      const auto& name = params_.spec(i).name;
      if (t.name == name || t.name.rfind(name + "[", 0) == 0) {
        // Counted as the layout counts it (a tensor-parallel replica: 1/tp on each tp rank).
        sum += params_.spec(i).grad_norm_share * backend_.sum_squares(t.grad, t.grad.numel());
        owned += t.grad.numel();
      }
    }
  }
  if (owned < total && dp) {
    float v = static_cast<float>(sum);
    Tensor s = backend_.allocate({1}, DType::f32);
    backend_.copy_from_host(s, &v);
    dp->all_reduce(s)->wait();
    backend_.copy_to_host(&v, s);
    sum = v;
  }
  return sum;
}

double PipelineExecutor::evaluate(const StepContext& ctx, const Tensor& tokens, const Tensor& targets) {
  double loss = 0;
  layout_.begin_micro_batch(false);
  params_.refresh_compute_resident();
  Tensor x;
  for (int c = 0; c < schedule_.chunks(); ++c) {
    if (schedule_.rank_of(c) != rank_) continue;
    if (c == 0) {
      x = residual();
      edge_->begin_pass(false);
      model_.embed_forward(ctx, shape_, tokens, x, *edge_);
      edge_->end_pass();
    } else {
      x = residual();
      pp_.recv(x, schedule_.rank_of(c - 1))->wait();
    }
    Tensor y = residual();
    for (int b = plan_.begin(c); b < plan_.end(c); ++b) {
      auto acts = take_store(b);
      layout_.before_forward(b);
      params_.refresh_compute_block(b);
      acts->begin_pass(false);
      model_.block_forward(b, ctx, shape_, x, y, *acts);
      acts->release_all();
      layout_.after_forward(b);
      give_store(b, std::move(acts));
      std::swap(x, y);
    }
    release(y);
    if (c == schedule_.chunks() - 1) {
      edge_->begin_pass(false);
      loss = model_.head_forward_backward(ctx, shape_, x, targets, 0.0f, Tensor(), *edge_);
      edge_->end_pass();
    } else {
      pp_.send(x, schedule_.rank_of(c + 1))->wait();
    }
    release(x);
  }
  layout_.end_micro_batch(false, false);
  return loss;
}

}  // namespace trainer
