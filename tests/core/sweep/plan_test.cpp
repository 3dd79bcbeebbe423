// The point plan: grid order (first key slowest), explicit points after it, readable
// filesystem-safe ids, the baseline found (or added), the run arguments.
#include <catch2/catch.hpp>

#include "core/sweep/sweep_helpers.hpp"
#include "sweep/plan.hpp"

using namespace sweep_test;
using namespace trainer::sweep;

namespace {
std::vector<std::string> ids(const Plan& plan) {
  std::vector<std::string> out;
  for (const auto& p : plan.points) out.push_back(p.id);
  return out;
}
Plan plan_of(const SweepFile& s) {
  std::vector<trainer::recipe::Diagnostic> d;
  auto plan = make_plan(s, d);
  INFO(trainer::recipe::format_diagnostics(d));
  REQUIRE(d.empty());
  return plan;
}
}  // namespace

TEST_CASE("the grid is a cartesian product in key order, first key slowest", "[sweep]") {
  TempDir dir;
  const auto plan = plan_of(load(dir, "base: base.yaml\ngrid:\n  recompute: [none, full, selective]\n"
                                      "  train.micro_batch: [2, 4]\n"));
  CHECK(ids(plan) == std::vector<std::string>{
                         "recompute=none,train.micro_batch=2", "recompute=none,train.micro_batch=4",
                         "recompute=full,train.micro_batch=2", "recompute=full,train.micro_batch=4",
                         "recompute=selective,train.micro_batch=2", "recompute=selective,train.micro_batch=4"});
  CHECK_FALSE(plan.baseline);
}

TEST_CASE("explicit points follow the grid; the baseline is found among them", "[sweep]") {
  TempDir dir;
  const auto plan = plan_of(load(dir, "base: base.yaml\ngrid: {recompute: [none, full]}\n"
                                      "points: [{recompute: full, model.n_layer: 3}]\n"
                                      "baseline: {recompute: none}\n"));
  CHECK(ids(plan) == std::vector<std::string>{"recompute=none", "recompute=full", "recompute=full,model.n_layer=3"});
  REQUIRE(plan.baseline);
  CHECK(*plan.baseline == 0);
  CHECK(plan.points[0].is_baseline);
  CHECK_FALSE(plan.points[0].added_for_baseline);
  CHECK_FALSE(plan.points[1].is_baseline);
}

TEST_CASE("a baseline matches regardless of key order; one matching no point is added first", "[sweep]") {
  TempDir dir;
  const auto matched = plan_of(load(dir, "base: base.yaml\ngrid: {a: [1, 2], b: [x, y]}\nbaseline: {b: y, a: 2}\n"));
  CHECK(*matched.baseline == 3);
  const auto added = plan_of(load(dir, "base: base.yaml\ngrid: {a: [1, 2]}\nbaseline: {a: 0}\n"));
  CHECK(ids(added) == std::vector<std::string>{"a=0", "a=1", "a=2"});
  CHECK(*added.baseline == 0);
  CHECK(added.points[0].added_for_baseline);
}

TEST_CASE("a point repeating another is a diagnostic at the repeat", "[sweep]") {
  TempDir dir;
  const auto s = load(dir, "base: base.yaml\ngrid: {a: [1, 2]}\npoints:\n  - {a: 2}\n");
  std::vector<trainer::recipe::Diagnostic> d;
  make_plan(s, d);
  REQUIRE(d.size() == 1);
  CHECK(d[0].message == "this point repeats point 'a=2'");
  CHECK(at(d[0]) == "4:5");
}

TEST_CASE("ids are filesystem-safe and stay readable", "[sweep]") {
  CHECK(point_id({{"recompute", "{plugin: full, every: 2}"}}) == "recompute=plugin-full,every-2");
  CHECK(point_id({{"data.train", "data/x y.bin"}}) == "data.train=data_xy.bin");
  CHECK(point_id({{"optimizer.lr", "1.0e-3"}}) == "optimizer.lr=1.0e-3");
  CHECK(point_id({{"plugin_path", "[a, b]"}}) == "plugin_path=a,b");
  const auto long_id = point_id({{"k", std::string(300, 'v')}});
  CHECK(long_id.size() < 130);
  CHECK(long_id != point_id({{"k", std::string(301, 'v')}}));
}

TEST_CASE("values that sanitize alike get numbered ids", "[sweep]") {
  TempDir dir;
  const auto plan = plan_of(load(dir, "base: base.yaml\ngrid: {data.train: [a/b, a_b]}\n"));
  CHECK(ids(plan) == std::vector<std::string>{"data.train=a_b", "data.train=a_b-2"});
}

TEST_CASE("run arguments: base, sweep overrides, point, command line, output.dir", "[sweep]") {
  TempDir dir;
  const auto s = load(dir, "base: base.yaml\noverrides: [train.steps=5]\ngrid: {recompute: [full]}\noutput: out/sw\n");
  const auto plan = plan_of(s);
  const auto args = run_arguments(s, plan.points[0], {"train.seed=3"});
  CHECK(args == std::vector<std::string>{s.base.string(), "train.steps=5", "recompute=full", "train.seed=3",
                                         "output.dir=out/sw/recompute=full"});
}

TEST_CASE("where selects points by their own values", "[sweep]") {
  Expectation x;
  x.where = {{"recompute", {"full", "selective"}}};
  Point p;
  p.assignments = {{"recompute", "full"}, {"train.micro_batch", "2"}};
  CHECK(selects(x, p));
  p.assignments[0].value = "none";
  CHECK_FALSE(selects(x, p));
  x.where = {{"model.n_layer", {"3"}}};
  CHECK_FALSE(selects(x, p));
  CHECK(selects(Expectation{}, p));
}

TEST_CASE("output.dir is quoted only when YAML would misread it", "[sweep]") {
  TempDir dir;
  const auto s = load(dir, "base: base.yaml\ngrid: {a: [1], b: ['#x']}\noutput: 'out: sw'\n");
  const auto plan = plan_of(s);
  CHECK(plan.points[0].id == "a=1,b=_x");
  CHECK(run_arguments(s, plan.points[0], {}).back() == "output.dir=\"out: sw/a=1,b=_x\"");
  const auto plain = load(dir, "base: base.yaml\ngrid: {a: [1], b: [2]}\noutput: out\n");
  CHECK(run_arguments(plain, plan_of(plain).points[0], {}).back() == "output.dir=out/a=1,b=2");
}
