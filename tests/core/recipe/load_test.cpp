// Loading a recipe file: YAML becomes a ConfigNode that remembers file:line:column.
#include <catch2/catch.hpp>

#include "core/recipe/recipe_helpers.hpp"

using namespace recipe_test;
using trainer::recipe::load_recipe;

TEST_CASE("a map entry's value carries its key's position; list items their own", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml",
                              "# comment\n"
                              "model:\n"
                              "  plugin: gpt\n"
                              "  n_layer:   4\n"
                              "plugin_path:\n"
                              "  - a\n"
                              "  -   b\n"
                              "data: {train: x.bin}\n");
  const ConfigNode r = load_recipe(file, {});
  REQUIRE(r.is_map());
  CHECK(r.origin().file == file.generic_string());
  CHECK(r.origin().line == 0);

  const ConfigNode& model = r.at("model");
  CHECK(model.origin().line == 2);
  CHECK(model.origin().column == 1);
  CHECK(model.at("n_layer").text() == "4");
  CHECK(model.at("n_layer").origin().to_string() == file.generic_string() + ":4:3");

  const ConfigNode& path = r.at("plugin_path");
  REQUIRE(path.is_list());
  REQUIRE(path.items().size() == 2);
  CHECK(path.items()[1].text() == "b");
  CHECK(path.items()[1].origin().line == 7);
  CHECK(path.items()[1].origin().column == 7);

  CHECK(r.at("data").at("train").origin().line == 8);
  CHECK(r.at("data").at("train").origin().column == 8);
}

TEST_CASE("scalars keep their text; nulls and empty strings differ", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", "a: 6e-4\nb:\nc: ~\nd: \"\"\ne: 'null'\nf: yes\n");
  const ConfigNode r = load_recipe(file, {});
  CHECK(r.at("a").text() == "6e-4");
  CHECK(r.at("b").is_null());
  CHECK(r.at("c").is_null());
  CHECK(r.at("d").is_scalar());
  CHECK(r.at("d").text().empty());
  CHECK(r.at("e").is_scalar());
  CHECK(r.at("e").text() == "null");
  CHECK(r.at("f").text() == "yes");
}

TEST_CASE("an empty file is an empty recipe", "[recipe]") {
  TempDir dir;
  const ConfigNode r = load_recipe(dir.write("r.yaml", "# nothing yet\n"), {});
  CHECK(r.is_map());
  CHECK(r.entries().empty());
}

TEST_CASE("a YAML syntax error points at file:line:column", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", "train:\n  steps: 10\n  micro_batch: [1, 2\n");
  const auto errors = load_errors(file);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].origin.file == file.generic_string());
  CHECK(errors[0].message.rfind("YAML syntax error: ", 0) == 0);
  CHECK(at(errors[0]) == "4:1");

  const auto bad_indent = dir.write("t.yaml", "train:\n  steps: 1\n bad: 2\n");
  const auto indent_errors = load_errors(bad_indent);
  REQUIRE(indent_errors.size() == 1);
  CHECK(at(indent_errors[0]) == "3:2");
}

TEST_CASE("a missing file is a diagnostic naming the path", "[recipe]") {
  TempDir dir;
  const auto file = dir.path() / "nope.yaml";
  const auto errors = load_errors(file);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].origin.file == file.generic_string());
  CHECK(errors[0].message == "recipe file '" + file.generic_string() + "' does not exist");
}

TEST_CASE("a duplicate key is an error at the second occurrence", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", "train:\n  steps: 1\n  steps: 2\n");
  const auto errors = load_errors(file);
  REQUIRE(errors.size() == 1);
  CHECK(at(errors[0]) == "3:3");
  CHECK(errors[0].message == "duplicate key 'steps' (first written at " + file.generic_string() + ":2:3)");
}

TEST_CASE("a recipe must be a map", "[recipe]") {
  TempDir dir;
  const auto errors = load_errors(dir.write("r.yaml", "- a\n- b\n"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "a recipe must be a map of sections");
}
