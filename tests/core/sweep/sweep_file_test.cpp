// The sweep file is validated like a recipe: every problem at once, each at file:line:column,
// unknown keys with a did-you-mean.
#include <catch2/catch.hpp>

#include "core/sweep/sweep_helpers.hpp"
#include "recipe/yaml_loader.hpp"

using namespace sweep_test;
using trainer::recipe::Diagnostic;

namespace {
const Diagnostic& only(const std::vector<Diagnostic>& diagnostics, const std::string& text) {
  const Diagnostic* found = nullptr;
  int count = 0;
  for (const auto& d : diagnostics) {
    if (d.message.find(text) != std::string::npos) {
      found = &d;
      ++count;
    }
  }
  INFO(trainer::recipe::format_diagnostics(diagnostics));
  REQUIRE(count == 1);
  return *found;
}
}  // namespace

TEST_CASE("a complete sweep file parses into its parts", "[sweep]") {
  TempDir dir;
  const auto s = load(dir,
                      "base: base.yaml\n"
                      "overrides: [train.steps=5]\n"
                      "grid:\n"
                      "  recompute: [none, full, selective]\n"
                      "  train.micro_batch: [2, 4]\n"
                      "points:\n"
                      "  - {recompute: {plugin: full, every: 2}, model.n_layer: 3}\n"
                      "baseline: {recompute: none, train.micro_batch: 4}\n"
                      "concurrency: 2\n"
                      "output: runs/sw\n"
                      "expect:\n"
                      "  - {metric: step_losses, rtol: 1.0e-5}\n"
                      "  - {metric: final_params_checksum, equal: true}\n"
                      "  - {metric: final_val_loss, max: 2.5}\n"
                      "  - {metric: activation_peak_bytes, max_ratio: 0.5, where: {recompute: [full, selective]}}\n");
  CHECK(s.base == (dir.path() / "base.yaml").lexically_normal());
  CHECK(s.overrides == std::vector<std::string>{"train.steps=5"});
  REQUIRE(s.grid.size() == 2);
  CHECK(s.grid[0].key == "recompute");
  CHECK(s.grid[0].values == std::vector<std::string>{"none", "full", "selective"});
  CHECK(s.grid[1].values == std::vector<std::string>{"2", "4"});
  REQUIRE(s.points.size() == 1);
  CHECK(s.points[0].assignments[0].value == "{plugin: full, every: 2}");
  REQUIRE(s.baseline);
  CHECK(s.baseline->assignments.size() == 2);
  CHECK(s.concurrency == 2);
  CHECK(s.output == "runs/sw");
  REQUIRE(s.expect.size() == 4);
  CHECK(*s.expect[0].rtol == Approx(1e-5));
  CHECK(s.expect[1].equal);
  CHECK(*s.expect[2].max == 2.5);
  CHECK(s.expect[3].where[0].second == std::vector<std::string>{"full", "selective"});
  CHECK(s.expect[0].label() == "step_losses rtol 1e-05");
  CHECK(s.expect[3].label() == "activation_peak_bytes max_ratio 0.5 [recompute=[full|selective]]");
}

TEST_CASE("defaults: concurrency 1, output runs/sweep-<file stem>", "[sweep]") {
  TempDir dir;
  const auto s = load(dir, "base: base.yaml\npoints: [{train.steps: 2}]\n");
  CHECK(s.concurrency == 1);
  CHECK(s.output == std::filesystem::path("runs/sweep-s"));
  CHECK(s.expect.empty());
  CHECK_FALSE(s.baseline);
}

TEST_CASE("every problem is reported at once, at its line and column", "[sweep]") {
  TempDir dir;
  const auto errors = sweep_errors(dir,
                                   "base: base.yaml\n"
                                   "gird:\n"
                                   "  recompute: [none]\n"
                                   "points: [{recompute: full}]\n"
                                   "concurrency: two\n"
                                   "expect:\n"
                                   "  - {metric: final_loss, mxa: 3}\n");
  CHECK(errors.size() == 3);
  const auto& unknown = only(errors, "unknown key 'gird'");
  CHECK(at(unknown) == "2:1");
  CHECK(unknown.hint == "did you mean 'grid'?");
  CHECK(unknown.origin.file == (dir.path() / "s.yaml").generic_string());
  CHECK(at(only(errors, "'concurrency' must be an integer")) == "5:1");
  const auto& mxa = only(errors, "unknown key 'mxa'");
  CHECK(at(mxa) == "7:26");
  CHECK(mxa.hint == "did you mean 'max'?");
}

TEST_CASE("wrong types and shapes are diagnostics", "[sweep]") {
  TempDir dir;
  CHECK(at(only(sweep_errors(dir, "base: base.yaml\ngrid: {recompute: full}\n"), "non-empty list")) == "2:8");
  CHECK(!only(sweep_errors(dir, "base: base.yaml\ngrid: {recompute: []}\n"), "an empty list").message.empty());
  CHECK(at(only(sweep_errors(dir, "base: base.yaml\npoints: {a: 1}\n"), "'points' must be a list")) == "2:1");
  CHECK(!only(sweep_errors(dir, "base: base.yaml\npoints: [3]\n"), "points[0] must be a map").message.empty());
  CHECK(!only(sweep_errors(dir, "base: base.yaml\npoints: [{a: 1}]\noverrides: train.steps=3\n"),
              "'overrides' must be a list")
             .message.empty());
  CHECK(!only(sweep_errors(dir, "base: base.yaml\npoints: [{a: 1}]\noverrides: [train.steps]\n"), "has no '='")
             .message.empty());
  CHECK(!only(sweep_errors(dir, "base: base.yaml\npoints: [{a: 1}]\nexpect: [{metric: final_loss, max: big}]\n"),
              "'expect[0].max' must be a number, found 'big'")
             .message.empty());
  CHECK(!only(sweep_errors(dir, "base: base.yaml\npoints: [{a: 1}]\nexpect: [{metric: final_loss, rtol: -1}]\n"),
              "non-negative")
             .message.empty());
  CHECK(!only(sweep_errors(dir, "base: base.yaml\npoints: [{a: 1}]\nexpect: [{metric: x, equal: maybe}]\n"),
              "true or false")
             .message.empty());
  CHECK(!only(sweep_errors(dir, "base: base.yaml\npoints: [{a: 1}]\nconcurrency: 0\n"), "between 1 and 1024")
             .message.empty());
}

TEST_CASE("the base recipe must exist, relative to the sweep file", "[sweep]") {
  TempDir dir;
  dir.write("configs/r.yaml", "train: {steps: 1}\n");
  dir.write("sweeps/ok.yaml", "base: ../configs/r.yaml\npoints: [{train.steps: 2}]\n");
  CHECK(trainer::sweep::load_sweep_file(dir.path() / "sweeps/ok.yaml").base ==
        (dir.path() / "configs/r.yaml").lexically_normal());
  const auto errors = sweep_errors(dir, "base: nowhere.yaml\npoints: [{train.steps: 2}]\n");
  CHECK(at(only(errors, "base recipe")) == "1:1");
  CHECK(!only(sweep_errors(dir, "points: [{train.steps: 2}]\n"), "missing required key 'base'").message.empty());
}

TEST_CASE("a sweep needs points, and comparisons need a baseline", "[sweep]") {
  TempDir dir;
  CHECK(!only(sweep_errors(dir, "base: base.yaml\n"), "has no points").message.empty());
  const auto errors = sweep_errors(dir, "base: base.yaml\ngrid: {a: [1, 2]}\nexpect:\n  - {metric: step_losses, rtol: 1e-5}\n");
  CHECK(at(only(errors, "compares against the baseline")) == "4:5");
}

TEST_CASE("checks must make sense for their metric", "[sweep]") {
  TempDir dir;
  const std::string head = "base: base.yaml\ngrid: {a: [1, 2]}\nbaseline: {a: 1}\nexpect:\n";
  CHECK(!only(sweep_errors(dir, head + "  - {metric: final_loss}\n"), "checks nothing").message.empty());
  CHECK(!only(sweep_errors(dir, head + "  - {metric: step_losses, max: 3}\n"), "is a series").message.empty());
  CHECK(!only(sweep_errors(dir, head + "  - {metric: final_loss, equal: true, rtol: 1}\n"), "keep one").message.empty());
  CHECK(!only(sweep_errors(dir, head + "  - {rtol: 1}\n"), "needs a 'metric'").message.empty());
  CHECK(sweep_errors(dir, head + "  - {metric: val_losses, atol: 0.1}\n  - {metric: step.grad_norm, equal: true}\n")
            .empty());
}

TEST_CASE("keys must be recipe keys, and output.dir belongs to the sweep", "[sweep]") {
  TempDir dir;
  CHECK(!only(sweep_errors(dir, "base: base.yaml\ngrid: {'train..steps': [1]}\n"), "is not a recipe key")
             .message.empty());
  CHECK(!only(sweep_errors(dir, "base: base.yaml\npoints: [{output.dir: x}]\n"), "is set by the sweep")
             .message.empty());
  CHECK(!only(sweep_errors(dir, "base: base.yaml\npoints: [{a: 1}]\noverrides: [output.dir=x]\n"),
              "is set by the sweep")
             .message.empty());
  CHECK(!only(sweep_errors(dir, "base: base.yaml\ngrid: {a: [1, 1]}\n"), "twice").message.empty());
}

TEST_CASE("YAML syntax errors and missing files", "[sweep]") {
  TempDir dir;
  CHECK(!only(sweep_errors(dir, "base: base.yaml\ngrid: [a\n"), "YAML syntax error").message.empty());
  try {
    trainer::sweep::load_sweep_file(dir.path() / "absent.yaml");
    FAIL("no error");
  } catch (const trainer::recipe::RecipeError& e) {
    CHECK(std::string(e.what()).find("sweep file") != std::string::npos);
  }
}

TEST_CASE("flow_yaml writes values that read back the same", "[sweep]") {
  std::vector<trainer::recipe::Diagnostic> d;
  const auto node = trainer::recipe::parse_yaml("v: {plugin: full, also_drop: [a, 'b: c'], s: ''}\n", "x", d);
  REQUIRE(node);
  CHECK(trainer::sweep::flow_yaml(node->at("v")) == "{plugin: full, also_drop: [a, \"b: c\"], s: \"\"}");
}
