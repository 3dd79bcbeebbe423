// The three schedule plugins checked by the core's simulator: well formed, never stuck,
// the in-flight bounds each promises, and the bubble the textbook predicts.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

#include "pipeline/schedule_simulation.hpp"
#include "support/plugins.hpp"
#include "trainer/pipeline.hpp"

using namespace trainer;
using trainer::pipeline::check_schedule;
using trainer::pipeline::simulate;
using trainer::pipeline::unit_costs;
using Kind = PipelineAction::Kind;

namespace {

PipelineSchedule build(const std::string& name, int stages, int micro, int virtual_stages = 2) {
  std::map<std::string, std::string> keys;
  if (name == "interleaved") keys["virtual_stages"] = std::to_string(virtual_stages);
  auto s = test::make_plugin<PipelineScheduler>(PluginKind::schedule, name, keys);
  REQUIRE(s->check(stages, micro).empty());
  return s->build(stages, micro);
}

// On every rank, each (micro, chunk)'s forward comes before its backward, and the forward
// of chunk c+1 on its rank comes after a receive of chunk c's output (likewise backward).
void require_causal(const PipelineSchedule& s) {
  for (std::size_t r = 0; r < s.ranks.size(); ++r) {
    std::set<std::pair<int, int>> forwarded, received_act, received_grad;
    for (const auto& a : s.ranks[r]) {
      if (a.kind == Kind::recv_activation) received_act.insert({a.micro, a.chunk});
      if (a.kind == Kind::recv_gradient) received_grad.insert({a.micro, a.chunk});
      if (a.kind == Kind::forward) {
        if (a.chunk > 0) REQUIRE(received_act.count({a.micro, a.chunk}) == 1);
        forwarded.insert({a.micro, a.chunk});
      }
      if (a.kind == Kind::backward) {
        REQUIRE(forwarded.count({a.micro, a.chunk}) == 1);
        if (a.chunk < s.chunks() - 1) REQUIRE(received_grad.count({a.micro, a.chunk}) == 1);
      }
    }
  }
}

}  // namespace

TEST_CASE("every schedule is well formed, causal and never stuck", "[pipeline]") {
  for (const std::string name : {"gpipe", "1f1b", "interleaved"}) {
    for (int p : {2, 3, 4}) {
      for (int m : {p, 2 * p, 3 * p}) {
        for (int v : {2, 3}) {
          if (name != "interleaved" && v > 2) continue;
          INFO(name << " p=" << p << " m=" << m << " v=" << v);
          const auto s = build(name, p, m, v);
          const auto problems = check_schedule(s);
          CAPTURE(problems);
          REQUIRE(problems.empty());
          require_causal(s);
          const auto t = simulate(s, unit_costs(s));
          INFO(t.stuck);
          REQUIRE(t.completes);
        }
      }
    }
  }
}

TEST_CASE("1f1b holds at most pp micro-batches in flight per stage, gpipe all of them", "[pipeline]") {
  for (int p : {2, 4}) {
    for (int m : {4, 8, 12}) {
      const auto one = simulate(build("1f1b", p, m), [](int, Kind, int) { return 1.0; });
      const auto all = simulate(build("gpipe", p, m), [](int, Kind, int) { return 1.0; });
      for (int r = 0; r < p; ++r) {
        CHECK(one.peak_in_flight[static_cast<std::size_t>(r)] == std::min(p - r, m));
        CHECK(all.peak_in_flight[static_cast<std::size_t>(r)] == m);
      }
    }
  }
}

TEST_CASE("the simulated bubble is the textbook one", "[pipeline]") {
  for (int p : {2, 4}) {
    for (int m : {4, 8, 16}) {
      for (const std::string name : {"gpipe", "1f1b"}) {
        const auto s = build(name, p, m);
        const auto t = simulate(s, unit_costs(s));
        for (double b : t.bubble) CHECK(b == Approx(pipeline::textbook_bubble(p, 1, m)).epsilon(1e-12));
      }
      for (int v : {2, 4}) {
        INFO("interleaved p=" << p << " m=" << m << " v=" << v);
        const auto s = build("interleaved", p, m, v);
        const auto t = simulate(s, unit_costs(s));
        for (double b : t.bubble) CHECK(b == Approx(pipeline::textbook_bubble(p, v, m)).epsilon(1e-9));
      }
    }
  }
}

TEST_CASE("check_schedule finds a missing receive and a simulated deadlock", "[pipeline]") {
  auto s = build("1f1b", 2, 4);
  // Drop rank 1's first receive: its forward has no input and rank 0's send goes nowhere.
  auto& r1 = s.ranks[1];
  r1.erase(r1.begin());
  const auto problems = check_schedule(s);
  REQUIRE_FALSE(problems.empty());

  // Both ranks receive before they send: each waits for the other.
  auto d = build("gpipe", 2, 2);
  std::swap(d.ranks[0][0], d.ranks[0][2]);  // rank 0 now waits for a gradient first
  d.ranks[0][0] = {Kind::recv_gradient, 0, 0, 1};
  const auto t = simulate(d, unit_costs(d));
  CHECK_FALSE(t.completes);
  CHECK(t.stuck.find("rank 0") != std::string::npos);
}

TEST_CASE("schedules refuse too few micro-batches with a clear reason", "[pipeline]") {
  auto one = test::make_plugin<PipelineScheduler>(PluginKind::schedule, "1f1b");
  CHECK(one->check(4, 2).find("at least pp = 4") != std::string::npos);
  auto inter = test::make_plugin<PipelineScheduler>(PluginKind::schedule, "interleaved");
  CHECK(inter->virtual_stages() == 2);
  CHECK(inter->check(4, 6).find("multiple") != std::string::npos);
  auto gpipe = test::make_plugin<PipelineScheduler>(PluginKind::schedule, "gpipe");
  CHECK(gpipe->check(4, 1).empty());
}
