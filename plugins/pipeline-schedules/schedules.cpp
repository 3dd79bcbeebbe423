#include "schedules.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace pipeline_schedules {
namespace {

using trainer::PipelineAction;
using trainer::PipelineSchedule;
using Kind = PipelineAction::Kind;

struct Compute {
  bool forward;
  int micro;
  int chunk;
};

// Wraps each rank's compute order with the receives and sends its neighbours pair with.
PipelineSchedule with_transfers(std::string name, int stages, int virtual_stages, int micro_batches,
                                const std::vector<std::vector<Compute>>& order) {
  PipelineSchedule s;
  s.name = std::move(name);
  s.stages = stages;
  s.virtual_stages = virtual_stages;
  s.micro_batches = micro_batches;
  const int last = s.chunks() - 1;
  for (const auto& computes : order) {
    std::vector<PipelineAction> actions;
    for (const auto& c : computes) {
      if (c.forward) {
        if (c.chunk > 0) actions.push_back({Kind::recv_activation, c.micro, c.chunk, s.rank_of(c.chunk - 1)});
        actions.push_back({Kind::forward, c.micro, c.chunk, -1});
        if (c.chunk < last) actions.push_back({Kind::send_activation, c.micro, c.chunk, s.rank_of(c.chunk + 1)});
      } else {
        if (c.chunk < last) actions.push_back({Kind::recv_gradient, c.micro, c.chunk, s.rank_of(c.chunk + 1)});
        actions.push_back({Kind::backward, c.micro, c.chunk, -1});
        if (c.chunk > 0) actions.push_back({Kind::send_gradient, c.micro, c.chunk, s.rank_of(c.chunk - 1)});
      }
    }
    s.ranks.push_back(std::move(actions));
  }
  return s;
}

}  // namespace

PipelineSchedule gpipe(int stages, int micro_batches) {
  std::vector<std::vector<Compute>> order(static_cast<std::size_t>(stages));
  for (int r = 0; r < stages; ++r) {
    auto& o = order[static_cast<std::size_t>(r)];
    for (int m = 0; m < micro_batches; ++m) o.push_back({true, m, r});
    for (int m = 0; m < micro_batches; ++m) o.push_back({false, m, r});
  }
  return with_transfers("gpipe", stages, 1, micro_batches, order);
}

PipelineSchedule one_f_one_b(int stages, int micro_batches) {
  std::vector<std::vector<Compute>> order(static_cast<std::size_t>(stages));
  for (int r = 0; r < stages; ++r) {
    auto& o = order[static_cast<std::size_t>(r)];
    const int warmup = std::min(stages - r - 1, micro_batches);
    const int steady = micro_batches - warmup;
    for (int m = 0; m < warmup; ++m) o.push_back({true, m, r});
    for (int i = 0; i < steady; ++i) {
      o.push_back({true, warmup + i, r});
      o.push_back({false, i, r});
    }
    for (int m = steady; m < micro_batches; ++m) o.push_back({false, m, r});
  }
  return with_transfers("1f1b", stages, 1, micro_batches, order);
}

PipelineSchedule interleaved(int stages, int virtual_stages, int micro_batches) {
  const int p = stages, v = virtual_stages;
  const int total = micro_batches * v;
  // The k-th forward (backward) of a rank: micro-batches advance in groups of p, each group
  // through the rank's chunks in order (in reverse for backward).
  const auto micro_of = [&](int k) { return (k / (p * v)) * p + k % p; };
  const auto local_forward = [&](int k) { return (k % (p * v)) / p; };
  std::vector<std::vector<Compute>> order(static_cast<std::size_t>(p));
  for (int r = 0; r < p; ++r) {
    auto& o = order[static_cast<std::size_t>(r)];
    const auto fwd = [&](int k) { return Compute{true, micro_of(k), local_forward(k) * p + r}; };
    const auto bwd = [&](int k) { return Compute{false, micro_of(k), (v - 1 - local_forward(k)) * p + r}; };
    const int warmup = micro_batches == p ? total : std::min((p - r - 1) * 2 + (v - 1) * p, total);
    const int steady = total - warmup;
    for (int k = 0; k < warmup; ++k) o.push_back(fwd(k));
    for (int i = 0; i < steady; ++i) {
      o.push_back(fwd(warmup + i));
      o.push_back(bwd(i));
    }
    for (int k = steady; k < total; ++k) o.push_back(bwd(k));
  }
  return with_transfers("interleaved", stages, v, micro_batches, order);
}

}  // namespace pipeline_schedules
