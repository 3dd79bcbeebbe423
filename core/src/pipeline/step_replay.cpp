#include "pipeline/step_replay.hpp"

#include "pipeline/message.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

namespace trainer::pipeline {
namespace {

using Kind = PipelineAction::Kind;


// One message of the step: who sent it to whom, when it started on its way (sender's
// clock), when the receiver asked for it and had it (receiver's clock).
struct Delivery {
  std::size_t from, to;
  double sent, asked, in_hand;
};

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

double entry(const std::vector<std::vector<double>>& v, std::size_t rank, std::size_t i) {
  return rank < v.size() && i < v[rank].size() ? v[rank][i] : -1.0;
}

std::vector<Delivery> deliveries(const PipelineSchedule& s, const MeasuredStep& step) {
  std::map<Message, std::pair<std::size_t, double>> sent;  // message -> (sender, when)
  for (std::size_t r = 0; r < s.ranks.size(); ++r) {
    for (std::size_t i = 0; i < s.ranks[r].size(); ++i) {
      const auto& a = s.ranks[r][i];
      if (a.kind != Kind::send_activation && a.kind != Kind::send_gradient) continue;
      if (const double at = entry(step.at, r, i); at >= 0) {
        sent[{a.kind == Kind::send_activation, a.micro, a.chunk}] = {r, at};
      }
    }
  }
  std::vector<Delivery> out;
  for (std::size_t r = 0; r < s.ranks.size(); ++r) {
    for (std::size_t i = 0; i < s.ranks[r].size(); ++i) {
      const auto& a = s.ranks[r][i];
      if (a.kind != Kind::recv_activation && a.kind != Kind::recv_gradient) continue;
      const bool activation = a.kind == Kind::recv_activation;
      const auto it = sent.find({activation, a.micro, activation ? a.chunk - 1 : a.chunk + 1});
      const double asked = entry(step.asked, r, i), in_hand = entry(step.at, r, i);
      if (it != sent.end() && asked >= 0 && in_hand >= 0) {
        out.push_back({it->second.first, r, it->second.second, asked, in_hand});
      }
    }
  }
  return out;
}

double offset_of(const MeasuredStep& step, std::size_t rank) {
  return rank < step.offset.size() ? step.offset[rank] : 0.0;
}

}  // namespace

void align_clocks(const PipelineSchedule& s, MeasuredStep& step) {
  const std::size_t P = s.ranks.size();
  step.offset.assign(P, 0.0);
  const auto all = deliveries(s, step);
  for (std::size_t r = 1; r < P; ++r) {
    // theta = offset[r] - offset[r-1]: a message from r-1 to r says theta >= sent - in_hand,
    // one from r to r-1 says theta <= in_hand - sent (each on its own stage's clock).
    double low = -std::numeric_limits<double>::infinity(), high = std::numeric_limits<double>::infinity();
    for (const auto& d : all) {
      if (d.from == r - 1 && d.to == r) low = std::max(low, d.sent - d.in_hand);
      if (d.from == r && d.to == r - 1) high = std::min(high, d.in_hand - d.sent);
    }
    double theta = 0;
    if (std::isfinite(low) && std::isfinite(high)) {
      theta = (low + high) / 2;
    } else if (std::isfinite(low)) {
      theta = std::max(0.0, low);
    } else if (std::isfinite(high)) {
      theta = std::min(0.0, high);
    }
    step.offset[r] = step.offset[r - 1] + theta;
  }
  for (std::size_t r = 0; r < P; ++r) {
    for (auto* times : {&step.at, &step.asked}) {
      if (r >= times->size()) continue;
      for (double& t : (*times)[r]) {
        if (t >= 0) t += step.offset[r];
      }
    }
  }
}

MessageCosts measured_message_costs(const PipelineSchedule& s, const MeasuredStep& step) {
  const auto all = deliveries(s, step);
  MessageCosts costs;
  std::vector<double> waited, arrived;
  for (const auto& d : all) {
    if (d.asked <= d.sent) waited.push_back(d.in_hand - d.sent);
  }
  costs.transfer = std::max(0.0, mean(waited));
  for (const auto& d : all) {
    if (d.asked >= d.sent + costs.transfer) arrived.push_back(d.in_hand - d.asked);
  }
  costs.receive = std::max(0.0, mean(arrived));
  return costs;
}

PipelineTimeline replay(const PipelineSchedule& s, const MeasuredStep& step, MessageCosts messages) {
  ActionTimes times{step.start, step.took, step.computing};
  for (std::size_t r = 0; r < times.start.size(); ++r) times.start[r] += offset_of(step, r);
  auto t = simulate(s, times, messages);
  const double end = t.makespan + messages.transfer;  // the end barrier
  for (std::size_t r = 0; r < t.bubble.size(); ++r) {
    const double span = end - offset_of(step, r);
    t.bubble[r] = span > 0 ? (span - t.busy[r]) / span : 0.0;
  }
  t.makespan = end;
  return t;
}

}  // namespace trainer::pipeline
