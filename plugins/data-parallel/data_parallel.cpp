#include "data_parallel.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace data_parallel {

using trainer::Tensor;
using Clock = std::chrono::steady_clock;

namespace {
const std::vector<std::size_t> kNoUnits;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
// What a wait cost the step: the comm plugin's own measure where it has one (a device plugin's
// wait also covers compute queued before the op), else the time this thread waited.
double exposed(const trainer::CommWork& work, double host_wait_s) {
  const double measured = work.exposed_seconds();
  return measured >= 0 ? measured : host_wait_s;
}
}  // namespace

DataParallelLayout::~DataParallelLayout() {
  // Never leave an operation running on buffers about to be freed.
  for (auto& p : pending_) {
    try {
      p.work->wait();
    } catch (...) {
    }
  }
  for (auto& [u, work] : pending_gathers_) {
    try {
      work->wait();
    } catch (...) {
    }
  }
  for (auto& w : waited_) {
    try {
      if (!w.work->ready()) w.work->wait();
    } catch (...) {
    }
  }
}

void DataParallelLayout::setup(const trainer::LayoutContext& ctx) {
  be_ = &ctx.backend;
  params_ = &ctx.params;
  comm_ = ctx.dp;
  plan_ = ctx.overlap;
  ranks_ = comm_ ? comm_->size() : 1;
  rank_ = comm_ ? comm_->rank() : 0;
  shards_ = plan_shards(*params_, ranks_, rank_);
  const auto& units = params_->units();
  for (std::size_t u = 0; u < units.size(); ++u) units_by_block_[units[u].block].push_back(u);
  value_shards_.resize(units.size());
  grad_shards_.resize(units.size());
  gathering_.resize(units.size());

  for (std::size_t u = 0; u < units.size(); ++u) {
    const auto& s = shards_[u];
    if (shards_grads()) {
      grad_shards_[u] = be_->allocate({s.shard_numel}, trainer::DType::f32);
      be_->fill_zero(grad_shards_[u]);
      params_->release_grads(u);  // full gradients exist only while a unit's backward needs them
    }
    if (sharding_ == Sharding::fsdp) {
      value_shards_[u] = be_->allocate({s.shard_numel}, trainer::DType::f32);
      be_->fill_zero(value_shards_[u]);
      if (s.owned > 0) {
        be_->copy(value_shards_[u].view(0, {s.owned}), params_->unit_values(u).view(s.begin, {s.owned}));
      }
      params_->release_values(u);
    }
  }
}

const std::vector<std::size_t>& DataParallelLayout::units_of(int block) const {
  auto it = units_by_block_.find(block);
  return it == units_by_block_.end() ? kNoUnits : it->second;
}

std::vector<trainer::OptimizerTarget> DataParallelLayout::optimizer_targets() {
  std::vector<trainer::OptimizerTarget> targets;
  if (sharding_ == Sharding::replicate) {
    // Whole parameters: the optimizer may write their bf16 compute copies too.
    const bool copies = params_->compute_dtype() != trainer::DType::f32;
    for (std::size_t i = 0; i < params_->size(); ++i) {
      targets.push_back({params_->spec(i).name, params_->value(i), params_->grad(i), params_->spec(i).weight_decay,
                         copies ? params_->compute_value(i) : Tensor()});
    }
    return targets;
  }
  for (std::size_t u = 0; u < shards_.size(); ++u) {
    const auto& s = shards_[u];
    for (const auto& slice : s.slices) {
      const auto& spec = params_->spec(slice.param);
      const std::int64_t in_unit = s.begin + slice.shard_offset;
      Tensor value = sharding_ == Sharding::fsdp ? value_shards_[u].view(slice.shard_offset, {slice.numel})
                                                 : params_->unit_values(u).view(in_unit, {slice.numel});
      Tensor grad = shards_grads() ? grad_shards_[u].view(slice.shard_offset, {slice.numel})
                                   : params_->unit_grads(u).view(in_unit, {slice.numel});
      targets.push_back({spec.name + "[" + std::to_string(slice.param_offset) + ":" +
                             std::to_string(slice.param_offset + slice.numel) + "]",
                         value, grad, spec.weight_decay, Tensor()});
    }
  }
  return targets;
}

Tensor DataParallelLayout::staging(const trainer::Shape& shape) {
  Tensor t = be_->allocate(shape, trainer::DType::f32);
  staging_bytes_ += t.bytes();
  peak_staging_bytes_ = std::max(peak_staging_bytes_, staging_bytes_);
  return t;
}

void DataParallelLayout::drop_staging(Tensor& t) {
  if (t) staging_bytes_ -= t.bytes();
  t = Tensor();
}

void DataParallelLayout::launch(std::unique_ptr<trainer::CommWork> work, std::function<void()> on_done) {
  pending_.push_back({std::move(work), std::move(on_done)});
}

// Later backend work (on_done's, the optimizer) is ordered after each operation on the device;
// the host does not wait (with a device comm plugin), so the GPU queue is not drained here.
void DataParallelLayout::wait_all() {
  // In issue order: the communicator runs them in that order too.
  for (auto& p : pending_) {
    wait_on_device(std::move(p.work));
    if (p.on_done) p.on_done();
  }
  pending_.clear();
}

void DataParallelLayout::wait_on_device(std::unique_ptr<trainer::CommWork> work) {
  const auto t0 = Clock::now();
  work->wait_on_device();
  waited_.push_back({std::move(work), seconds_since(t0)});
}

// --- parameters (fsdp) -------------------------------------------------------------------

void DataParallelLayout::issue_gather(std::size_t u) {
  if (sharding_ != Sharding::fsdp || params_->unit_values(u) || gathering_[u]) return;
  const auto& s = shards_[u];
  gathering_[u] = staging({s.shard_numel * ranks_});
  if (!comm_) {
    be_->copy(gathering_[u], value_shards_[u]);
    return;
  }
  // Waited for in require_values(), not in wait_all(): the gather's buffer is its own.
  pending_gathers_.emplace(u, comm_->all_gather(gathering_[u], value_shards_[u]));
}

void DataParallelLayout::require_values(std::size_t u) {
  if (sharding_ != Sharding::fsdp || params_->unit_values(u)) return;
  issue_gather(u);
  auto it = pending_gathers_.find(u);
  if (it != pending_gathers_.end()) {
    wait_on_device(std::move(it->second));
    pending_gathers_.erase(it);
  }
  params_->materialize_values(u);
  be_->copy(params_->unit_values(u), gathering_[u].view(0, {params_->units()[u].numel}));
  drop_staging(gathering_[u]);
}

void DataParallelLayout::release_values(std::size_t u) {
  if (sharding_ == Sharding::fsdp) params_->release_values(u);
}

// --- the hooks -----------------------------------------------------------------------------

void DataParallelLayout::begin_micro_batch(bool training) {
  for (auto u : units_of(-1)) {
    require_values(u);
    if (training && shards_grads()) params_->materialize_grads(u);
  }
  if (sharding_ == Sharding::fsdp && plan_.prefetch_depth > 0) {
    for (int b = 0; b < plan_.prefetch_depth; ++b) {
      for (auto u : units_of(b)) issue_gather(u);
    }
  }
}

void DataParallelLayout::before_forward(int block) {
  for (auto u : units_of(block)) require_values(u);
  for (int d = 1; d <= plan_.prefetch_depth; ++d) {
    for (auto u : units_of(block + d)) issue_gather(u);
  }
}

void DataParallelLayout::after_forward(int block) {
  for (auto u : units_of(block)) release_values(u);
}

void DataParallelLayout::before_backward(int block) {
  for (auto u : units_of(block)) {
    require_values(u);
    if (shards_grads()) params_->materialize_grads(u);
  }
  for (int d = 1; d <= plan_.prefetch_depth; ++d) {
    for (auto u : units_of(block - d)) issue_gather(u);
  }
}

void DataParallelLayout::after_backward(int block, bool last_micro) {
  for (auto u : units_of(block)) release_values(u);
  if (plan_.reduce_during_backward) grads_ready(units_of(block), last_micro);
}

void DataParallelLayout::end_micro_batch(bool training, bool last_micro) {
  if (training) {
    if (!plan_.reduce_during_backward) {
      // Baseline: every unit's communication after the whole backward.
      for (auto it = units_by_block_.rbegin(); it != units_by_block_.rend(); ++it) {
        if (it->first >= 0) grads_ready(it->second, last_micro);
      }
    }
    grads_ready(units_of(-1), last_micro);
    if (!shards_grads() && last_micro) flush_all_reduce_bucket();
    if (shards_grads() || last_micro) wait_all();
  }
  for (auto u : units_of(-1)) release_values(u);
}

// --- gradient reduction ----------------------------------------------------------------------

void DataParallelLayout::grads_ready(const std::vector<std::size_t>& units, bool last_micro) {
  if (shards_grads()) {
    // Sharded gradients are reduced every micro-batch so that full gradients never
    // outlive their unit's backward.
    for (auto u : units) reduce_scatter_unit(u);
    return;
  }
  if (!last_micro || !comm_) return;  // accumulate locally until the step's last micro-batch
  for (auto u : units) {
    bucket_units_.push_back(u);
    bucket_bytes_now_ += params_->unit_grads(u).bytes();
    if (plan_.reduce_during_backward && bucket_bytes_now_ >= plan_.bucket_bytes) flush_all_reduce_bucket();
  }
}

void DataParallelLayout::flush_all_reduce_bucket() {
  if (bucket_units_.empty()) return;
  if (bucket_units_.size() == 1) {
    // A unit's gradients are one flat tensor already: reduced where they lie, with no copy
    // into a bucket and back (at GPT-2's block size every bucket is one block).
    launch(comm_->all_reduce(params_->unit_grads(bucket_units_.front())), nullptr);
    bucket_units_.clear();
    bucket_bytes_now_ = 0;
    return;
  }
  // Several small units: one flat buffer, fewer and larger messages than one per unit.
  std::int64_t n = 0;
  for (auto u : bucket_units_) n += params_->units()[u].numel;
  auto bucket = std::make_shared<Tensor>(staging({n}));
  std::int64_t at = 0;
  for (auto u : bucket_units_) {
    const auto& g = params_->unit_grads(u);
    be_->copy(bucket->view(at, {g.numel()}), g);
    at += g.numel();
  }
  auto units = bucket_units_;
  launch(comm_->all_reduce(*bucket), [this, bucket, units] {
    std::int64_t off = 0;
    for (auto u : units) {
      const auto& g = params_->unit_grads(u);
      be_->copy(g, bucket->view(off, {g.numel()}));
      off += g.numel();
    }
    drop_staging(*bucket);
  });
  bucket_units_.clear();
  bucket_bytes_now_ = 0;
}

void DataParallelLayout::reduce_scatter_unit(std::size_t u) {
  const auto& s = shards_[u];
  const auto n = params_->units()[u].numel;
  if (!comm_) {
    be_->axpby(grad_shards_[u], 1.0f, params_->unit_grads(u), 1.0f, n);
    params_->release_grads(u);
    return;
  }
  auto send = std::make_shared<Tensor>(staging({s.shard_numel * ranks_}));
  auto recv = std::make_shared<Tensor>(staging({s.shard_numel}));
  be_->fill_zero(*send);  // the padding past the unit's end sums to zero
  be_->copy(send->view(0, {n}), params_->unit_grads(u));
  params_->release_grads(u);
  launch(comm_->reduce_scatter(*recv, *send), [this, u, send, recv] {
    be_->axpby(grad_shards_[u], 1.0f, *recv, 1.0f, recv->numel());
    drop_staging(*send);
    drop_staging(*recv);
  });
}

// Every gradient (or this rank's shard of it) as a term of the squared norm, in unit order.
// Tensor parallel: a parameter every tp rank holds whole counts grad_norm_share (1/tp) of its
// squares, so that the engine's sum over the tp group counts it once.
std::vector<trainer::SquaresTerm> DataParallelLayout::squares_terms() const {
  bool shares = false;
  for (const auto& spec : params_->specs()) shares = shares || spec.grad_norm_share != 1.0f;
  std::vector<trainer::SquaresTerm> terms;
  for (std::size_t u = 0; u < shards_.size(); ++u) {
    if (!shards_grads()) {
      // Replicated gradients are bitwise equal on every rank after the all-reduce.
      const auto& unit = params_->units()[u];
      if (!shares) {
        terms.push_back({params_->unit_grads(u).view(0, {unit.numel}), 1.0});
        continue;
      }
      for (std::size_t i = unit.first; i < unit.last; ++i) terms.push_back({params_->grad(i), params_->spec(i).grad_norm_share});
      continue;
    }
    if (!shares) {
      terms.push_back({grad_shards_[u].view(0, {shards_[u].shard_numel}), 1.0});
      continue;
    }
    for (const auto& slice : shards_[u].slices) {
      terms.push_back({grad_shards_[u].view(slice.shard_offset, {slice.numel}), params_->spec(slice.param).grad_norm_share});
    }
  }
  return terms;
}

double DataParallelLayout::grad_sum_squares() {
  Tensor out = be_->allocate({1}, trainer::DType::f64);
  grad_sum_squares_on_device(out, *be_);
  double host = 0;
  be_->copy_to_host(&host, out);
  return host;
}

// One multi-tensor reduction on the device; sharded gradients add their ranks' partial sums
// there too (as f32, the dtype they always met in), so the engine's one read sees the total.
void DataParallelLayout::grad_sum_squares_on_device(const Tensor& out, trainer::Backend&) {
  const auto terms = squares_terms();
  if (!shards_grads() || !comm_) {
    be_->sum_squares_many(out, terms);
    return;
  }
  Tensor partial = be_->allocate({1}, trainer::DType::f32);
  be_->sum_squares_many(partial, terms);
  launch(comm_->all_reduce(partial), nullptr);
  wait_all();
  be_->convert(out, partial);
}

void DataParallelLayout::scale_grads(float factor) {
  for (std::size_t u = 0; u < shards_.size(); ++u) {
    const Tensor& g = shards_grads() ? grad_shards_[u] : params_->unit_grads(u);
    be_->axpby(g, 0.0f, g, factor, g.numel());
  }
}

void DataParallelLayout::zero_grads() {
  if (!shards_grads()) {
    params_->zero_grads();
    return;
  }
  for (auto& g : grad_shards_) be_->fill_zero(g);
}

// --- after the update ------------------------------------------------------------------------

void DataParallelLayout::all_gather_updated(std::size_t u) {
  const auto& s = shards_[u];
  const auto n = params_->units()[u].numel;
  auto mine = std::make_shared<Tensor>(staging({s.shard_numel}));
  auto all = std::make_shared<Tensor>(staging({s.shard_numel * ranks_}));
  be_->fill_zero(*mine);
  if (s.owned > 0) be_->copy(mine->view(0, {s.owned}), params_->unit_values(u).view(s.begin, {s.owned}));
  launch(comm_->all_gather(*all, *mine), [this, u, n, mine, all] {
    be_->copy(params_->unit_values(u), all->view(0, {n}));
    drop_staging(*mine);
    drop_staging(*all);
  });
}

void DataParallelLayout::after_optimizer_step() {
  if (!comm_ || sharding_ == Sharding::replicate || sharding_ == Sharding::fsdp) return;
  for (std::size_t u = 0; u < shards_.size(); ++u) all_gather_updated(u);
  wait_all();
}

trainer::CommTimes DataParallelLayout::take_comm_times() {
  // Called after the step's host read, when the operations waited for on the device are done:
  // wait() then returns at once, or throws the CommError of one that failed meanwhile.
  for (auto& w : waited_) {
    w.work->wait();
    times_.exposed_s += exposed(*w.work, w.host_wait_s);
    times_.total_s += w.work->busy_seconds();
  }
  waited_.clear();
  auto t = times_;
  times_ = {};
  return t;
}

std::size_t DataParallelLayout::parameter_bytes() const {
  std::size_t b = 0;
  for (const auto& t : value_shards_) b += t ? t.bytes() : 0;
  return b;
}

std::size_t DataParallelLayout::gradient_bytes() const {
  std::size_t b = 0;
  for (const auto& t : grad_shards_) b += t ? t.bytes() : 0;
  return b;
}

}  // namespace data_parallel
