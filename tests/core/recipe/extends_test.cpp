// `extends`: base recipes, deep merge, relative paths, cycles.
#include <catch2/catch.hpp>

#include "core/recipe/recipe_helpers.hpp"

using namespace recipe_test;
using trainer::recipe::load_recipe;

TEST_CASE("the extending file is deep-merged over its base", "[recipe]") {
  TempDir dir;
  const auto base = dir.write("base.yaml",
                              "model:\n  plugin: gpt\n  n_layer: 2\n  n_head: 4\n"
                              "train:\n  steps: 100\n  micro_batch: 8\n"
                              "plugin_path: [a, b]\n");
  const auto child = dir.write("child.yaml",
                               "extends: base.yaml\n"
                               "model:\n  n_layer: 6\n"
                               "plugin_path: [c]\n"
                               "output:\n  name: small\n");
  const ConfigNode r = load_recipe(child, {});
  CHECK_FALSE(r.has("extends"));
  // Maps merge key by key, keeping the base's order.
  const ConfigNode& model = r.at("model");
  REQUIRE(model.entries().size() == 3);
  CHECK(model.entries()[0].first == "plugin");
  CHECK(model.at("n_layer").text() == "6");
  CHECK(model.at("n_layer").origin().to_string() == child.generic_string() + ":3:3");
  CHECK(model.at("n_head").text() == "4");
  CHECK(model.at("n_head").origin().to_string() == base.generic_string() + ":4:3");
  CHECK(r.at("train").at("steps").text() == "100");
  // Lists replace.
  REQUIRE(r.at("plugin_path").items().size() == 1);
  CHECK(r.at("plugin_path").items()[0].text() == "c");
  CHECK(r.at("output").at("name").text() == "small");
  // Sections come in the base's order, new ones after.
  std::vector<std::string> keys;
  for (const auto& [k, v] : r.entries()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"model", "train", "plugin_path", "output"});
  // The merged map belongs to the last file that wrote it.
  CHECK(model.origin().file == child.generic_string());
}

TEST_CASE("extends paths are relative to the extending file, not the working folder", "[recipe]") {
  TempDir dir;
  dir.write("configs/base/common.yaml", "train:\n  steps: 5\n");
  dir.write("configs/base/model.yaml", "extends: common.yaml\nmodel: gpt\n");
  const auto child = dir.write("configs/exp/run.yaml", "extends: ../base/model.yaml\n");
  const ConfigNode r = load_recipe(child, {});
  CHECK(r.at("train").at("steps").text() == "5");
  CHECK(r.at("train").at("steps").origin().file ==
        (dir.path() / "configs/base/common.yaml").generic_string());
  CHECK(r.at("model").at("plugin").text() == "gpt");
}

TEST_CASE("a list of bases is applied in order, later ones winning", "[recipe]") {
  TempDir dir;
  dir.write("a.yaml", "train:\n  steps: 1\n  micro_batch: 2\n");
  dir.write("b.yaml", "train:\n  steps: 3\n");
  const auto child = dir.write("c.yaml", "extends: [a.yaml, b.yaml]\ntrain:\n  log_every: 7\n");
  const ConfigNode r = load_recipe(child, {});
  CHECK(r.at("train").at("steps").text() == "3");
  CHECK(r.at("train").at("micro_batch").text() == "2");
  CHECK(r.at("train").at("log_every").text() == "7");
}

TEST_CASE("a plugin shorthand in a base merges with a map in the extending file", "[recipe]") {
  TempDir dir;
  dir.write("base.yaml", "recompute: selective\n");
  const auto child = dir.write("child.yaml", "extends: base.yaml\nrecompute:\n  layers: 2\n");
  const ConfigNode r = load_recipe(child, {});
  CHECK(r.at("recompute").at("plugin").text() == "selective");
  CHECK(r.at("recompute").at("layers").text() == "2");
}

TEST_CASE("a diamond of bases is not a cycle", "[recipe]") {
  TempDir dir;
  dir.write("root.yaml", "train:\n  steps: 1\n");
  dir.write("left.yaml", "extends: root.yaml\n");
  dir.write("right.yaml", "extends: root.yaml\n");
  const auto top = dir.write("top.yaml", "extends: [left.yaml, right.yaml]\n");
  CHECK(load_errors(top).empty());
}

TEST_CASE("an extends cycle is reported with the chain, at the entry that closes it", "[recipe]") {
  TempDir dir;
  const auto a = dir.write("a.yaml", "extends: b.yaml\n");
  const auto b = dir.write("b.yaml", "train:\n  steps: 1\nextends: ./a.yaml\n");
  const auto errors = load_errors(a);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].origin.to_string() == b.generic_string() + ":3:1");
  CHECK(errors[0].message == "extends cycle: " + a.generic_string() + " -> " + b.generic_string() +
                                 " -> " + a.generic_string());

  const auto self = dir.write("self.yaml", "extends: self.yaml\n");
  const auto self_errors = load_errors(self);
  REQUIRE(self_errors.size() == 1);
  CHECK(self_errors[0].message ==
        "extends cycle: " + self.generic_string() + " -> " + self.generic_string());
}

TEST_CASE("a missing base is reported at the extends entry, with the resolved path", "[recipe]") {
  TempDir dir;
  const auto child = dir.write("sub/child.yaml", "train:\n  steps: 1\nextends:\n  - ok.yaml\n  - gone.yaml\n");
  dir.write("sub/ok.yaml", "{}\n");
  const auto errors = load_errors(child);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].origin.to_string() == child.generic_string() + ":5:5");
  CHECK(errors[0].message ==
        "recipe file '" + (dir.path() / "sub/gone.yaml").generic_string() + "' does not exist");
}

TEST_CASE("errors in a base name the base file", "[recipe]") {
  TempDir dir;
  const auto base = dir.write("base.yaml", "train: [\n");
  const auto errors = load_errors(dir.write("child.yaml", "extends: base.yaml\n"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].origin.file == base.generic_string());
}

TEST_CASE("extends must name files", "[recipe]") {
  TempDir dir;
  const auto errors = load_errors(dir.write("r.yaml", "extends:\n  a: b\n"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "'extends' must be a file name or a list of them");
  CHECK(at(errors[0]) == "1:1");
}
