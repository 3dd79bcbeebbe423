// The replay that predicts a step's bubble from its measured costs: with unit action times
// it is the textbook figure, message costs and clock offsets come from the send and receive
// times, and a step that did not follow the schedule (a stage that stalled, an order the
// schedule does not have) is told apart from one that did.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <tuple>

#include "pipeline/schedule_simulation.hpp"
#include "pipeline/step_replay.hpp"
#include "support/plugins.hpp"
#include "trainer/pipeline.hpp"

using namespace trainer;
using trainer::pipeline::MeasuredStep;
using trainer::pipeline::MessageCosts;
using Kind = PipelineAction::Kind;

namespace {

PipelineSchedule build(const std::string& name, int stages, int micro,
                       const std::map<std::string, std::string>& keys = {}) {
  auto s = test::make_plugin<PipelineScheduler>(PluginKind::schedule, name, keys);
  REQUIRE(s->check(stages, micro).empty());
  return s->build(stages, micro);
}

struct Run {
  double forward = 1, backward = 2;
  double last_stage_factor = 1;  // the last stage's compute times are this many times longer
  double transfer = 0;           // a message is in hand this long after its send started
  double stall = 0;              // stage 0 idles this long before its last action (not in its action times)
  double late = 0;               // the last stage leaves the start barrier this much later
};

// A step that an ideal executor ran by the schedule (each action at the earliest time its
// inputs allow), measured as the executor measures it: every stage on its own clock from the
// start barrier, own action times, when sends started and receives were asked for and in
// hand, and the span to a common end barrier one transfer after the last stage's end.
MeasuredStep ideal_step(const PipelineSchedule& s, const Run& run) {
  const auto P = s.ranks.size();
  MeasuredStep m;
  m.start.assign(P, 0.0);
  m.compute.assign(P, 0.0);
  m.span.assign(P, 0.0);
  std::vector<double> begin(P, 0.0);  // when each stage starts, on stage 0's clock
  begin[P - 1] = run.late;
  for (std::size_t r = 0; r < P; ++r) {
    const double f = r + 1 == P ? run.last_stage_factor : 1.0;
    for (auto* list : {&m.took, &m.computing, &m.at, &m.asked}) list->emplace_back(s.ranks[r].size(), -1.0);
    for (std::size_t i = 0; i < s.ranks[r].size(); ++i) {
      const auto& a = s.ranks[r][i];
      const bool compute = a.kind == Kind::forward || a.kind == Kind::backward;
      const double d = compute ? (a.kind == Kind::forward ? run.forward : run.backward) * f : 0.0;
      m.took[r][i] = d;
      m.computing[r][i] = d;
      m.compute[r] += d;
    }
  }
  std::vector<std::size_t> pc(P, 0);
  std::vector<double> now(begin);
  std::map<std::tuple<bool, int, int>, double> posted;
  for (bool progress = true; progress;) {
    progress = false;
    for (std::size_t r = 0; r < P; ++r) {
      for (; pc[r] < s.ranks[r].size(); ++pc[r]) {
        const auto& a = s.ranks[r][pc[r]];
        const auto i = pc[r];
        if (a.kind == Kind::recv_activation || a.kind == Kind::recv_gradient) {
          const bool act = a.kind == Kind::recv_activation;
          const auto it = posted.find({act, a.micro, act ? a.chunk - 1 : a.chunk + 1});
          if (it == posted.end()) break;
          m.asked[r][i] = now[r] - begin[r];
          now[r] = std::max(now[r], it->second + run.transfer);
          m.at[r][i] = now[r] - begin[r];
        } else if (a.kind == Kind::send_activation || a.kind == Kind::send_gradient) {
          m.at[r][i] = now[r] - begin[r];
          posted[{a.kind == Kind::send_activation, a.micro, a.chunk}] = now[r];
        } else {
          if (r == 0 && i + 1 == s.ranks[r].size()) now[r] += run.stall;
          now[r] += m.took[r][i];
        }
        progress = true;
      }
    }
  }
  for (std::size_t r = 0; r < P; ++r) REQUIRE(pc[r] == s.ranks[r].size());
  const double end = *std::max_element(now.begin(), now.end()) + run.transfer;
  for (std::size_t r = 0; r < P; ++r) m.span[r] = end - begin[r];
  return m;
}

double rel_error(double measured, double predicted) { return std::abs(measured - predicted) / predicted; }

// The prediction as the trainer makes it: clocks aligned, message costs, replay.
pipeline::PipelineTimeline predict(const PipelineSchedule& s, MeasuredStep step) {
  pipeline::align_clocks(s, step);
  return pipeline::replay(s, step, pipeline::measured_message_costs(s, step));
}

}  // namespace

TEST_CASE("replayed with unit costs, a schedule shows the textbook bubble", "[pipeline]") {
  for (const std::string name : {"gpipe", "1f1b"}) {
    for (int p : {2, 4}) {
      const auto s = build(name, p, 8);
      const auto step = ideal_step(s, Run{});
      const auto t = pipeline::replay(s, step, MessageCosts{});
      REQUIRE(t.completes);
      for (std::size_t r = 0; r < t.bubble.size(); ++r) {
        CHECK(t.bubble[r] == Approx(pipeline::textbook_bubble(p, 1, 8)).epsilon(1e-12));
        CHECK(step.bubble(r) == Approx(t.bubble[r]).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("message costs come from the send and receive times", "[pipeline]") {
  const auto s = build("1f1b", 2, 4);
  const auto step = ideal_step(s, Run{.transfer = 0.25});
  const auto costs = pipeline::measured_message_costs(s, step);
  CHECK(costs.transfer == Approx(0.25));
  // Messages that were there before they were asked for were in hand at once.
  CHECK(costs.receive == Approx(0.0).margin(1e-12));
  const auto t = pipeline::replay(s, step, costs);
  for (std::size_t r = 0; r < 2; ++r) CHECK(t.bubble[r] == Approx(step.bubble(r)).epsilon(1e-9));
  // Without the transfer time the replay ends earlier: a smaller bubble than measured.
  const auto free = pipeline::replay(s, step, MessageCosts{});
  for (std::size_t r = 0; r < 2; ++r) CHECK(free.bubble[r] < step.bubble(r));
}

TEST_CASE("a stage that left the start barrier late is put on stage 0's clock", "[pipeline]") {
  for (int p : {2, 4}) {
    const auto s = build("1f1b", p, 8);
    const auto step = ideal_step(s, Run{.transfer = 0.1, .late = 2.0});
    auto aligned = step;
    pipeline::align_clocks(s, aligned);
    REQUIRE(aligned.offset.size() == static_cast<std::size_t>(p));
    CHECK(aligned.offset[0] == 0.0);
    CHECK(aligned.offset.back() == Approx(2.0));
    const auto t = predict(s, step);
    for (int r = 0; r < p; ++r) CHECK(t.bubble[static_cast<std::size_t>(r)] == Approx(step.bubble(static_cast<std::size_t>(r))).epsilon(1e-9));
    // Taken at face value, the late stage's clock puts messages in hand before they were
    // sent, and its replay starts too early: its bubble comes out several percent off.
    const auto naive = pipeline::replay(s, step, pipeline::measured_message_costs(s, step));
    const auto last = static_cast<std::size_t>(p - 1);
    CHECK(rel_error(step.bubble(last), naive.bubble[last]) > 0.05);
  }
}

TEST_CASE("the replay follows a slow stage, the unit-cost prediction does not", "[pipeline]") {
  const auto s = build("1f1b", 2, 8);
  const auto step = ideal_step(s, Run{.last_stage_factor = 3.0});
  const auto unit = pipeline::simulate(s, pipeline::unit_costs(s));
  const auto t = predict(s, step);
  CHECK(rel_error(step.bubble(0), t.bubble[0]) < 1e-9);
  CHECK(rel_error(step.bubble(1), t.bubble[1]) < 1e-9);
  CHECK(rel_error(step.bubble(0), unit.bubble[0]) > 0.2);
}

TEST_CASE("idle time the schedule does not explain is not predicted", "[pipeline]") {
  // Stage 0 stalls before its last backward (the stall is not in its action times): the
  // measured bubble grows, the replay of the same action times does not.
  const auto s = build("1f1b", 2, 8);
  const auto step = ideal_step(s, Run{.stall = 10.0});
  const auto t = predict(s, step);
  CHECK(t.makespan < step.span[0]);
  CHECK(rel_error(step.bubble(0), t.bubble[0]) > 0.2);
}

TEST_CASE("a step measured under another schedule's order is told apart", "[pipeline]") {
  // An interleaved step (2 chunks per stage) against 1f1b over the same work: one chunk per
  // stage costing both of its chunks. The replay of the right lists matches, the other not.
  const auto inter = build("interleaved", 2, 4, {{"virtual_stages", "2"}});
  const auto step = ideal_step(inter, Run{.forward = 0.5, .backward = 1.0});
  const auto right = predict(inter, step);
  for (std::size_t r = 0; r < 2; ++r) CHECK(rel_error(step.bubble(r), right.bubble[r]) < 1e-9);
  const auto one = build("1f1b", 2, 4);
  const auto wrong = pipeline::simulate(one, [](int, Kind k, int) { return k == Kind::forward ? 1.0 : 2.0; });
  for (std::size_t r = 0; r < 2; ++r) CHECK(rel_error(step.bubble(r), wrong.bubble[r]) > 0.2);
}
