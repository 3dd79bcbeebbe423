// Schema validation: every error at its file:line:column, all at once; then defaults.
#include <catch2/catch.hpp>

#include "core/recipe/recipe_helpers.hpp"

using namespace recipe_test;

TEST_CASE("a minimal recipe is valid and gets every default", "[recipe]") {
  TempDir dir;
  ConfigNode r;
  const auto errors = validate_file(dir.write("r.yaml", kMinimal), &r);
  INFO(trainer::recipe::format_diagnostics(errors));
  REQUIRE(errors.empty());
  for (const char* section : {"model", "backend", "optimizer", "recompute", "data", "train", "output", "parallel",
                              "launch", "layout", "overlap"}) {
    INFO(section);
    CHECK(r.at(section).is_map());
  }
  CHECK_FALSE(r.has("comm"));  // optional: a single process needs no collectives
  CHECK(r.at("parallel").get_int("dp") == 1);  // auto: the whole world of one
  CHECK_FALSE(r.at("data").has("synth"));
  CHECK(r.at("model").at("plugin").text() == "gpt");
  CHECK(r.at("model").at("plugin").origin().file == "<default>");
  CHECK(r.at("model").entries()[0].first == "plugin");
  CHECK(r.at("model").at("n_layer").text() == "2");  // the plugin's own default
  CHECK(r.at("backend").at("plugin").text() == "cpu");
  CHECK(r.at("optimizer").at("plugin").text() == "adamw");
  CHECK(r.at("optimizer").at("lr").text() == "6e-4");
  CHECK(r.at("optimizer").at("lr").origin().to_string() == "<default>");
  CHECK(r.at("optimizer").at("decay").text() == "cosine");
  CHECK(r.at("optimizer").at("beta2").text() == "0.95");
  CHECK(r.at("recompute").at("plugin").text() == "none");
  CHECK(r.at("precision").text() == "f32");
  CHECK(r.at("plugin_path").is_list());
  CHECK(r.at("plugin_path").items().empty());
  CHECK(r.at("data").at("val").is_scalar());
  CHECK(r.at("data").at("val").text().empty());
  CHECK(r.at("train").get_int("steps") == 10);
  CHECK(r.at("train").get_int("micro_batch") == 8);
  CHECK(r.at("train").get_int("global_batch") == 8);
  CHECK(r.at("train").get_double("grad_clip") == 1.0);
  CHECK(r.at("train").get_int("seed") == 1337);
  CHECK(r.at("output").get_string("dir") == "runs/default");
  CHECK(r.at("output").get_string("name") == "run");
}

TEST_CASE("optional subsections are filled when written", "[recipe]") {
  TempDir dir;
  ConfigNode r;
  const auto errors =
      validate_file(dir.write("r.yaml", std::string(kMinimal) + "parallel: {}\n"), &r,
                    {"data.synth.vocab=256"});
  REQUIRE(errors.empty());
  CHECK(r.at("parallel").get_int("dp") == 1);
  const ConfigNode& synth = r.at("data").at("synth");
  CHECK(synth.get_int("vocab") == 256);
  CHECK(synth.get_int("order") == 1);
  CHECK(synth.get_int("train_tokens") == 2000000);
  CHECK(synth.get_double("concentration") == 1.0);
}

TEST_CASE("unknown keys are reported at the key, with a suggestion", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml",
                              "data:\n"
                              "  train: t.bin\n"
                              "  synth:\n"
                              "    vocab: 100\n"
                              "    brnaching: 3\n"
                              "train:\n"
                              "  steps: 10\n"
                              "model:\n"
                              "  plugin: gpt\n"
                              "  n_layers: 12\n");
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 2);
  const auto& deep = only(errors, "'brnaching'");
  CHECK(deep.origin.to_string() == file.generic_string() + ":5:5");
  CHECK(deep.message == "unknown key 'brnaching' in section 'data.synth'");
  CHECK(deep.hint == "did you mean 'branching'?");

  const auto& plugin = only(errors, "'n_layers'");
  CHECK(at(plugin) == "10:3");
  CHECK(plugin.message == "unknown key 'n_layers' in section 'model' (plugin gpt)");
  CHECK(plugin.hint == "did you mean 'n_layer'?");
}

TEST_CASE("an unknown key with no close match lists the accepted keys", "[recipe]") {
  TempDir dir;
  const auto errors = validate_file(dir.write("r.yaml", std::string(kMinimal) + "output:\n  colour: red\n"));
  const auto& e = only(errors, "'colour'");
  CHECK(at(e) == "6:3");
  CHECK(e.hint == "accepted keys: dir, name, final_parameters");
}

TEST_CASE("a section's key written at the top level points to its section", "[recipe]") {
  TempDir dir;
  const auto errors = validate_file(dir.write("r.yaml", std::string(kMinimal) + "seed: 5\n"));
  const auto& e = only(errors, "'seed'");
  CHECK(e.message == "unknown key 'seed' at the top level");
  CHECK(at(e) == "5:1");
  CHECK(e.hint == "'seed' belongs in a section: did you mean 'train.seed'?");
}

TEST_CASE("wrong types say what was expected and what was found", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml",
                              "data:\n  train: [a, b]\n"
                              "train:\n  steps: ten\n  grad_clip: high\n"
                              "plugin_path: {a: 1}\n"
                              "model:\n  dropout: [1]\n");
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 5);
  CHECK(only(errors, "'data.train'").message == "'data.train' must be a string, found a list");
  const auto& steps = only(errors, "'train.steps'");
  CHECK(steps.message == "'train.steps' must be an integer, found 'ten'");
  CHECK(steps.origin.to_string() == file.generic_string() + ":4:3");
  CHECK(only(errors, "grad_clip").message == "'train.grad_clip' must be a number, found 'high'");
  CHECK(only(errors, "plugin_path").message == "'plugin_path' must be a list of strings, found a map");
  CHECK(at(only(errors, "dropout")) == "8:3");
}

TEST_CASE("values outside min/max are reported with the bounds", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml",
                              "data:\n  train: t\n  synth:\n    vocab: 70000\n    concentration: 0.001\n"
                              "train:\n  steps: 0\n"
                              "optimizer:\n  lr: -1\n");
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 4);
  const auto& vocab = only(errors, "vocab");
  CHECK(vocab.message == "'data.synth.vocab' must be between 2 and 65535, found 70000");
  CHECK(at(vocab) == "4:5");
  CHECK(only(errors, "concentration").message ==
        "'data.synth.concentration' must be at least 0.01, found 0.001");
  CHECK(only(errors, "steps").message == "'train.steps' must be at least 1, found 0");
  CHECK(at(only(errors, "'optimizer.lr'")) == "9:3");
}

TEST_CASE("a value not among the choices lists them and suggests the closest", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", std::string(kMinimal) + "precision: bf61\noptimizer:\n  decay: step\n");
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 2);
  const auto& precision = only(errors, "precision");
  CHECK(precision.message == "'precision' must be one of f32, bf16; found 'bf61'");
  CHECK(precision.hint == "did you mean 'bf16'?");
  CHECK(at(precision) == "5:1");
  const auto& decay = only(errors, "decay");
  CHECK(decay.message == "'optimizer.decay' must be one of cosine, linear, constant; found 'step'");
  CHECK(decay.hint.empty());
}

TEST_CASE("missing required keys point at their section, or the file", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", "model: gpt\ntrain:\n  micro_batch: 4\n");
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 2);
  const auto& steps = only(errors, "'steps'");
  CHECK(steps.message == "missing required key 'steps' in section 'train'");
  CHECK(steps.hint == "steps: optimizer steps to run");
  CHECK(at(steps) == "2:1");
  const auto& train = only(errors, "key 'train'");
  CHECK(train.message == "missing required key 'train' in section 'data'");
  CHECK(train.origin.to_string() == file.generic_string());  // no data section at all
}

TEST_CASE("unknown plugins are reported at the plugin name; their keys are not judged", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", std::string(kMinimal) +
                                            "model:\n  plugin: gtp\n  n_layer: 4\n  whatever: 1\n"
                                            "backend: metal\n");
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 2);
  const auto& model = only(errors, "gtp");
  CHECK(model.message == "no model plugin 'gtp'; available: gpt");
  CHECK(model.origin.to_string() == file.generic_string() + ":6:3");
  CHECK(at(only(errors, "metal")) == "9:1");
}

TEST_CASE("every error is reported in one pass", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml",
                              "data:\n  train: t\n"
                              "train:\n  steps: -5\n  micro_bach: 4\n"
                              "precision: fp8\n");
  const auto errors = validate_file(file);
  CHECK(errors.size() == 3);
  const std::string text = trainer::recipe::format_diagnostics(errors);
  CHECK(text.find("3 error(s); nothing was run.") != std::string::npos);
  CHECK(text.find(file.generic_string() + ":5:3: error: unknown key 'micro_bach' in section 'train'\n"
                  "    hint: did you mean 'micro_batch'?\n") != std::string::npos);
}

TEST_CASE("a key written without a value takes its default", "[recipe]") {
  TempDir dir;
  ConfigNode r;
  const auto errors = validate_file(dir.write("r.yaml", std::string(kMinimal) + "optimizer:\n  lr:\n"), &r);
  REQUIRE(errors.empty());
  CHECK(r.at("optimizer").at("lr").text() == "6e-4");
  CHECK(r.at("optimizer").at("lr").origin().file == "<default>");
}

TEST_CASE("a single string where a list is expected becomes a one-item list", "[recipe]") {
  TempDir dir;
  ConfigNode r;
  REQUIRE(validate_file(dir.write("r.yaml", std::string(kMinimal) + "plugin_path: plugins\n"), &r).empty());
  REQUIRE(r.at("plugin_path").is_list());
  CHECK(r.at("plugin_path").as_string_list() == std::vector<std::string>{"plugins"});
}

TEST_CASE("a plain section written as a scalar is an error", "[recipe]") {
  TempDir dir;
  const auto errors = validate_file(dir.write("r.yaml", std::string(kMinimal) + "output: here\n"));
  const auto& e = only(errors, "output");
  CHECK(e.message == "section 'output' must be a map, found 'here'");
  CHECK(at(e) == "5:1");
}
