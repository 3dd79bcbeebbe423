// Printing the resolved recipe as YAML that loads back into the same tree.
#include <catch2/catch.hpp>

#include "core/recipe/recipe_helpers.hpp"

using namespace recipe_test;
using trainer::recipe::print_recipe;
using trainer::recipe::yaml_scalar;

TEST_CASE("print_recipe writes block style in insertion order, scalar lists in flow style", "[recipe]") {
  ConfigNode r = ConfigNode::map();
  r["model"]["plugin"] = ConfigNode::scalar("gpt");
  r["model"]["n_layer"] = ConfigNode::scalar("4");
  r["plugin_path"] = ConfigNode::list();
  r["plugin_path"].push_back(ConfigNode::scalar("a"));
  r["plugin_path"].push_back(ConfigNode::scalar("b c"));
  r["empty"] = ConfigNode::list();
  r["nothing"] = ConfigNode::map();
  ConfigNode item = ConfigNode::map();
  item["name"] = ConfigNode::scalar("x");
  item["sizes"] = ConfigNode::list();
  item["sizes"].push_back(ConfigNode::scalar("1"));
  r["items"] = ConfigNode::list();
  r["items"].push_back(item);
  r["val"] = ConfigNode::scalar("");
  r["unset"] = ConfigNode{};
  CHECK(print_recipe(r) ==
        "model:\n"
        "  plugin: gpt\n"
        "  n_layer: 4\n"
        "plugin_path: [a, b c]\n"
        "empty: []\n"
        "nothing: {}\n"
        "items:\n"
        "  - name: x\n"
        "    sizes: [1]\n"
        "val: \"\"\n"
        "unset: null\n");
}

TEST_CASE("scalars are quoted only when YAML would read them differently", "[recipe]") {
  CHECK(yaml_scalar("runs/default") == "runs/default");
  CHECK(yaml_scalar("6e-4") == "6e-4");
  CHECK(yaml_scalar("-1") == "-1");
  CHECK(yaml_scalar("true") == "true");
  CHECK(yaml_scalar("") == "\"\"");
  CHECK(yaml_scalar("null") == "\"null\"");
  CHECK(yaml_scalar("~") == "\"~\"");
  CHECK(yaml_scalar("a: b") == "\"a: b\"");
  CHECK(yaml_scalar("#x") == "\"#x\"");
  CHECK(yaml_scalar("- x") == "\"- x\"");
  CHECK(yaml_scalar("a,b") == "\"a,b\"");
  CHECK(yaml_scalar(" lead") == "\" lead\"");
  CHECK(yaml_scalar("say \"hi\"\n") == "\"say \\\"hi\\\"\\n\"");
}

TEST_CASE("a resolved recipe round-trips through print and load", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml",
                              "model:\n  plugin: gpt\n  n_layer: 3\n"
                              "recompute: selective\n"
                              "plugin_path: [p1, 'odd, name', '#hash']\n"
                              "data:\n  train: 'data/train: v2.bin'\n  synth: {vocab: 128}\n"
                              "train:\n  steps: 20\n"
                              "output:\n  name: 'null'\n  dir: ' spaced '\n");
  ConfigNode first;
  const auto errors = validate_file(file, &first);
  INFO(trainer::recipe::format_diagnostics(errors));
  REQUIRE(errors.empty());

  const std::string printed = print_recipe(first);
  INFO(printed);
  const auto again_file = dir.write("printed.yaml", printed);
  ConfigNode second;
  REQUIRE(validate_file(again_file, &second).empty());
  CHECK(same_tree(first, second));
  CHECK(print_recipe(second) == printed);
  CHECK(second.at("output").at("name").text() == "null");
  CHECK(second.at("plugin_path").items()[1].text() == "odd, name");
}

TEST_CASE("lists of maps and nested lists round-trip", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml",
                              "a:\n  - {x: 1, y: [1, 2]}\n  - [p, q]\n  - - {z: 3}\n  - {}\n"
                              "b: [[1, 2], []]\n");
  const ConfigNode first = trainer::recipe::load_recipe(file, {});
  const std::string printed = print_recipe(first);
  INFO(printed);
  const ConfigNode second = trainer::recipe::load_recipe(dir.write("p.yaml", printed), {});
  CHECK(same_tree(first, second));
}
