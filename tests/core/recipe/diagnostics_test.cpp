// How diagnostics are shown to the user, and how close matches are found.
#include <catch2/catch.hpp>

#include "recipe/diagnostics.hpp"
#include "recipe/suggest.hpp"

using namespace trainer::recipe;
using trainer::Origin;

TEST_CASE("diagnostics format as file:line:col: error lines with hints and a count", "[recipe]") {
  const std::vector<Diagnostic> diagnostics = {
      {Origin{"configs/x.yaml", 12, 5}, "unknown key 'n_layers' in section 'model' (plugin gpt)",
       "did you mean 'n_layer'?"},
      {command_line_origin(), "override 'train.steps' has no '='", ""},
  };
  CHECK(format_diagnostics(diagnostics) ==
        "configs/x.yaml:12:5: error: unknown key 'n_layers' in section 'model' (plugin gpt)\n"
        "    hint: did you mean 'n_layer'?\n"
        "<command line>: error: override 'train.steps' has no '='\n"
        "2 error(s); nothing was run.\n");
}

TEST_CASE("RecipeError carries its diagnostics and shows them all", "[recipe]") {
  const RecipeError error({{Origin{"a.yaml", 1, 1}, "first", ""}, {default_origin(), "second", "h"}});
  CHECK(error.diagnostics.size() == 2);
  CHECK(std::string(error.what()) ==
        "a.yaml:1:1: error: first\n<default>: error: second\n    hint: h\n2 error(s); nothing was run.\n");
}

TEST_CASE("edit distance counts an adjacent swap as one edit", "[recipe]") {
  CHECK(edit_distance("n_layer", "n_layer") == 0);
  CHECK(edit_distance("n_layers", "n_layer") == 1);
  CHECK(edit_distance("lyaer", "layer") == 1);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("closest_match: distance at most 2, else a prefix", "[recipe]") {
  const std::vector<std::string> keys = {"steps", "micro_batch", "global_batch", "warmup_steps"};
  CHECK(closest_match("step", keys) == "steps");
  CHECK(closest_match("micro_bach", keys) == "micro_batch");
  CHECK(closest_match("warmup", keys) == "warmup_steps");
  CHECK(closest_match("zzz", keys) == std::nullopt);
  // Two edits are a whole two-letter word: no guess.
  CHECK(closest_match("dp", {"lr"}) == std::nullopt);
  CHECK(suggestion_hint("stpes", keys) == "did you mean 'steps'?");
  CHECK(suggestion_hint("zzz", keys) == "accepted keys: steps, micro_batch, global_batch, warmup_steps");
}
