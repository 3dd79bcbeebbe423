// Elastic restarts: renumbering over the remaining launch slots, and faults that follow
// their slot.
#include <catch2/catch.hpp>

#include "launch/elastic.hpp"
#include "recipe/diagnostics.hpp"
#include "recipe/yaml_loader.hpp"

using namespace trainer;
using namespace trainer::launch;

namespace {
ConfigNode yaml(const std::string& text) {
  std::vector<trainer::recipe::Diagnostic> diagnostics;
  auto node = recipe::parse_yaml(text, "r.yaml", diagnostics);
  REQUIRE(node);
  return *node;
}
}  // namespace

TEST_CASE("excluded ranks leave the slots; the others are renumbered in order", "[launch][elastic]") {
  ElasticSlots s(4);
  CHECK(s.exclude(1) == 1);
  CHECK(s.slots == std::vector<int>{0, 2, 3});
  CHECK(s.exclude(2) == 3);  // rank 2 is now slot 3
  CHECK(s.slots == std::vector<int>{0, 2});
  CHECK_THROWS(s.exclude(2));
}

TEST_CASE("faults follow their slot; an excluded slot's faults are gone", "[launch][elastic]") {
  const ConfigNode recipe = yaml(
      "faults:\n"
      "  - {step: 25, rank: 3, kind: kill, attempts: all}\n"
      "  - {step: 30, rank: 2, kind: slow, seconds: 0.5}\n"
      "  - {step: 31, rank: 0, kind: nan}\n");
  ElasticSlots s(4);
  s.exclude(1);
  CHECK(faults_override(recipe, s) ==
        "faults=[{step: 25, rank: 2, kind: kill, attempts: all}, {step: 30, rank: 1, kind: slow, seconds: 0.5}, "
        "{step: 31, rank: 0, kind: nan}]");
  s.exclude(2);  // slot 3
  CHECK(faults_override(recipe, s) == "faults=[{step: 30, rank: 1, kind: slow, seconds: 0.5}, {step: 31, rank: 0, kind: nan}]");
  CHECK(faults_override(yaml("train: {steps: 3}\n"), s).empty());
}
