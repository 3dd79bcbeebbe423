#include "pipeline/schedule_simulation.hpp"

#include "pipeline/message.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

namespace trainer::pipeline {
namespace {

using Kind = PipelineAction::Kind;

bool is_send(Kind k) { return k == Kind::send_activation || k == Kind::send_gradient; }
bool is_recv(Kind k) { return k == Kind::recv_activation || k == Kind::recv_gradient; }


Message sent(const PipelineAction& a) { return {a.kind == Kind::send_activation, a.micro, a.chunk}; }
Message awaited(const PipelineAction& a) {
  const bool act = a.kind == Kind::recv_activation;
  return {act, a.micro, act ? a.chunk - 1 : a.chunk + 1};
}

std::string label(const PipelineAction& a) {
  const char* tag = "?";
  switch (a.kind) {
    case Kind::forward: tag = "F"; break;
    case Kind::backward: tag = "B"; break;
    case Kind::send_activation: tag = ">A"; break;
    case Kind::recv_activation: tag = "<A"; break;
    case Kind::send_gradient: tag = ">G"; break;
    case Kind::recv_gradient: tag = "<G"; break;
  }
  return fmt::format("{}{}.{}", tag, a.micro, a.chunk);
}

}  // namespace

std::vector<std::string> check_schedule(const PipelineSchedule& s) {
  std::vector<std::string> problems;
  const int C = s.chunks(), M = s.micro_batches;
  if (static_cast<int>(s.ranks.size()) != s.stages) {
    problems.push_back(fmt::format("{} action lists for {} stages", s.ranks.size(), s.stages));
    return problems;
  }
  // (micro, chunk) -> position of its forward / backward in its rank's list.
  std::map<std::pair<int, int>, int> fwd, bwd;
  std::map<std::pair<int, Message>, int> sends, recvs;  // (to or from rank, message) -> count
  for (int r = 0; r < s.stages; ++r) {
    const auto& list = s.ranks[static_cast<std::size_t>(r)];
    for (int i = 0; i < static_cast<int>(list.size()); ++i) {
      const auto& a = list[static_cast<std::size_t>(i)];
      if (a.micro < 0 || a.micro >= M || a.chunk < 0 || a.chunk >= C) {
        problems.push_back(fmt::format("rank {} action {} ({}) is outside {} micro-batches × {} chunks", r, i, label(a), M, C));
        continue;
      }
      if (s.rank_of(a.chunk) != r) {
        problems.push_back(fmt::format("rank {} action {} ({}) belongs to chunk {} of rank {}", r, i, label(a), a.chunk,
                                       s.rank_of(a.chunk)));
      }
      if (a.kind == Kind::forward || a.kind == Kind::backward) {
        auto& seen = a.kind == Kind::forward ? fwd : bwd;
        if (!seen.emplace(std::pair(a.micro, a.chunk), i).second) {
          problems.push_back(fmt::format("rank {}: {} appears twice", r, label(a)));
        }
      } else if (is_send(a.kind)) {
        ++sends[{a.peer, sent(a)}];
        const int to = a.kind == Kind::send_activation ? a.chunk + 1 : a.chunk - 1;
        if (to < 0 || to >= C || a.peer != s.rank_of(to)) {
          problems.push_back(fmt::format("rank {}: {} goes to rank {}, not to the rank of chunk {}", r, label(a), a.peer, to));
        }
      } else {
        ++recvs[{r, awaited(a)}];
      }
    }
  }
  for (int m = 0; m < M; ++m) {
    for (int c = 0; c < C; ++c) {
      const auto f = fwd.find({m, c}), b = bwd.find({m, c});
      if (f == fwd.end()) problems.push_back(fmt::format("no forward of micro-batch {} on chunk {}", m, c));
      if (b == bwd.end()) problems.push_back(fmt::format("no backward of micro-batch {} on chunk {}", m, c));
      if (f != fwd.end() && b != bwd.end() && b->second < f->second) {
        problems.push_back(fmt::format("micro-batch {} on chunk {}: backward before forward", m, c));
      }
    }
  }
  // Every send has one receive at its destination and vice versa.
  for (const auto& [where, n] : sends) {
    if (recvs[where] != n) {
      problems.push_back(fmt::format("rank {} never receives the {} of micro-batch {} from chunk {}", where.first,
                                     where.second.activation ? "activation" : "gradient", where.second.micro,
                                     where.second.from_chunk));
    }
  }
  for (const auto& [where, n] : recvs) {
    const auto it = sends.find(where);
    if (n > 0 && (it == sends.end() || it->second != n)) {
      problems.push_back(fmt::format("rank {} waits for the {} of micro-batch {} from chunk {}, which nobody sends",
                                     where.first, where.second.activation ? "activation" : "gradient",
                                     where.second.micro, where.second.from_chunk));
    }
  }
  return problems;
}

ActionCost unit_costs(const PipelineSchedule& s) {
  const double v = s.virtual_stages;
  return [v](int, Kind kind, int) { return kind == Kind::forward ? 1.0 / v : 2.0 / v; };
}

PipelineTimeline simulate(const PipelineSchedule& s, const ActionCost& cost, double transfer) {
  ActionTimes times;
  times.start.assign(s.ranks.size(), 0.0);
  for (std::size_t r = 0; r < s.ranks.size(); ++r) {
    auto& took = times.took.emplace_back();
    for (const auto& a : s.ranks[r]) {
      const bool compute = a.kind == Kind::forward || a.kind == Kind::backward;
      took.push_back(compute ? cost(static_cast<int>(r), a.kind, a.chunk) : 0.0);
    }
    times.computing.push_back(took);
  }
  return simulate(s, times, MessageCosts{transfer, 0.0});
}

PipelineTimeline simulate(const PipelineSchedule& s, const ActionTimes& times, MessageCosts messages) {
  const auto P = static_cast<std::size_t>(s.stages);
  PipelineTimeline t;
  t.busy.assign(P, 0.0);
  t.bubble.assign(P, 0.0);
  t.peak_in_flight.assign(P, 0);
  if (s.ranks.size() != P || times.start.size() != P || times.took.size() != P || times.computing.size() != P) {
    t.completes = false;
    t.stuck = "the schedule and the action times differ in their number of ranks";
    return t;
  }
  std::vector<std::size_t> pc(P, 0);
  std::vector<double> now(times.start);
  std::vector<std::set<std::pair<int, int>>> in_flight(P);
  std::map<Message, double> posted;  // message -> time it was sent
  for (bool progress = true; progress;) {
    progress = false;
    for (std::size_t r = 0; r < P; ++r) {
      const auto& list = s.ranks[r];
      for (; pc[r] < list.size(); ++pc[r]) {
        const auto& a = list[pc[r]];
        const auto took = [&](const std::vector<std::vector<double>>& v) {
          return pc[r] < v[r].size() ? v[r][pc[r]] : 0.0;
        };
        if (is_recv(a.kind)) {
          const auto it = posted.find(awaited(a));
          if (it == posted.end()) break;  // blocked until the peer sends
          now[r] = std::max(now[r] + messages.receive, it->second + messages.transfer);
        } else if (is_send(a.kind)) {
          posted[sent(a)] = now[r];  // on its way from the start of the send
          now[r] += took(times.took);
        } else {
          now[r] += took(times.took);
          t.busy[r] += took(times.computing);
          if (a.kind == Kind::forward) {
            in_flight[r].insert({a.micro, a.chunk});
            t.peak_in_flight[r] = std::max(t.peak_in_flight[r], static_cast<int>(in_flight[r].size()));
          } else {
            in_flight[r].erase({a.micro, a.chunk});
          }
        }
        if (is_recv(a.kind)) now[r] += took(times.took);
        progress = true;
      }
    }
  }
  for (std::size_t r = 0; r < P; ++r) {
    if (pc[r] < s.ranks[r].size()) {
      t.completes = false;
      t.stuck += fmt::format("{}rank {} waits at action {} ({})", t.stuck.empty() ? "" : "; ", r, pc[r],
                             label(s.ranks[r][pc[r]]));
    }
  }
  t.makespan = *std::max_element(now.begin(), now.end());
  for (std::size_t r = 0; r < P; ++r) t.bubble[r] = t.makespan > 0 ? (t.makespan - t.busy[r]) / t.makespan : 0.0;
  return t;
}

double textbook_bubble(int stages, int virtual_stages, int micro_batches) {
  const double p = stages, v = virtual_stages, m = micro_batches;
  return (p - 1) / (v * m + p - 1);
}

std::string describe(const PipelineSchedule& s) {
  std::string out;
  for (std::size_t r = 0; r < s.ranks.size(); ++r) {
    out += fmt::format("rank {}:", r);
    for (const auto& a : s.ranks[r]) {
      out += ' ';
      out += label(a);
    }
    out += '\n';
  }
  return out;
}

}  // namespace trainer::pipeline
