// Command-line overrides: section.key=value, applied after extends.
#include <catch2/catch.hpp>

#include "core/recipe/recipe_helpers.hpp"
#include "recipe/overrides.hpp"

using namespace recipe_test;
using trainer::recipe::load_recipe;

TEST_CASE("an override replaces a value and is marked as from the command line", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", "train:\n  steps: 10\n");
  const ConfigNode r = load_recipe(file, {"train.steps=100", "output.name=exp 1"});
  CHECK(r.at("train").at("steps").text() == "100");
  CHECK(r.at("train").at("steps").origin().file == "<command line>");
  CHECK(r.at("train").at("steps").origin().line == 0);
  // Missing sections are created.
  CHECK(r.at("output").at("name").text() == "exp 1");
}

TEST_CASE("override values are YAML scalars or flow collections", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", "model:\n  plugin: gpt\n  n_layer: 2\n");
  const ConfigNode r = load_recipe(file, {"plugin_path=[a, b]", "model={n_head: 8}", "data.val=",
                                          "output.name='x: y'"});
  REQUIRE(r.at("plugin_path").is_list());
  CHECK(r.at("plugin_path").items().size() == 2);
  CHECK(r.at("plugin_path").items()[1].text() == "b");
  // A map merges into the section like extends does.
  CHECK(r.at("model").at("n_layer").text() == "2");
  CHECK(r.at("model").at("n_head").text() == "8");
  CHECK(r.at("data").at("val").is_scalar());
  CHECK(r.at("data").at("val").text().empty());
  CHECK(r.at("output").at("name").text() == "x: y");
}

TEST_CASE("overrides are applied after extends and in order", "[recipe]") {
  TempDir dir;
  dir.write("base.yaml", "train:\n  steps: 1\n");
  const auto file = dir.write("r.yaml", "extends: base.yaml\ntrain:\n  steps: 2\n");
  const ConfigNode r = load_recipe(file, {"train.steps=3", "train.steps=4"});
  CHECK(r.at("train").at("steps").text() == "4");
}

TEST_CASE("plugin shorthands work both ways through overrides", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", "recompute: selective\nmodel:\n  plugin: gpt\n");
  const ConfigNode a = load_recipe(file, {"recompute.layers=3"});
  CHECK(a.at("recompute").at("plugin").text() == "selective");
  CHECK(a.at("recompute").at("layers").text() == "3");

  const ConfigNode b = load_recipe(file, {"recompute=full", "backend=cuda"});
  REQUIRE(b.at("recompute").is_map());
  CHECK(b.at("recompute").at("plugin").text() == "full");
  CHECK_FALSE(b.at("recompute").has("layers"));
  CHECK(b.at("backend").at("plugin").text() == "cuda");
}

TEST_CASE("malformed overrides are diagnostics, all reported together", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", "train:\n  steps: 10\n");
  const auto errors =
      load_errors(file, {"train.steps", "=5", "train..steps=1", "train.steps=[1,", "train.steps.x=1"});
  REQUIRE(errors.size() == 5);
  for (const auto& e : errors) CHECK(e.origin.file == "<command line>");
  CHECK(errors[0].message == "override 'train.steps' has no '='");
  CHECK(errors[0].hint == "write overrides as section.key=value, e.g. train.steps=100");
  CHECK(errors[1].message == "override '=5' has a malformed key ''");
  CHECK(errors[2].message == "override 'train..steps=1' has a malformed key 'train..steps'");
  CHECK(errors[3].message.rfind("override 'train.steps=[1,': cannot parse the value", 0) == 0);
  CHECK(errors[4].message == "override 'train.steps.x=1': 'train.steps' is a value, not a section (set at " +
                                 file.generic_string() + ":2:3)");
}

TEST_CASE("parse_override splits the key path and keeps literal text", "[recipe]") {
  std::vector<Diagnostic> diagnostics;
  auto o = trainer::recipe::parse_override("data.synth.vocab=256", diagnostics);
  REQUIRE(o);
  CHECK(o->path == std::vector<std::string>{"data", "synth", "vocab"});
  CHECK(o->value.text() == "256");
  // '#' would start a YAML comment; on the command line it is meant literally.
  auto hash = trainer::recipe::parse_override("output.name=#3", diagnostics);
  REQUIRE(hash);
  CHECK(hash->value.text() == "#3");
  auto null = trainer::recipe::parse_override("data.val=~", diagnostics);
  REQUIRE(null);
  CHECK(null->value.is_null());
  CHECK(diagnostics.empty());
}
