// trainer run / trainer validate: resolve a recipe (extends, overrides, validation against
// the core schema and every plugin's keys), then print it or train it.
#include <fmt/format.h>

#include <iostream>

#include "commands.hpp"
#include "engine/resolve_recipe.hpp"
#include "engine/trainer.hpp"
#include "recipe/diagnostics.hpp"
#include "recipe/print.hpp"

namespace trainer::cli {

bool parse_recipe_args(const Args& args, const char* command, RecipeArgs& out) {
  for (const auto& a : args) {
    if (a.rfind("--", 0) == 0) {
      out.flags.push_back(a);
    } else if (out.recipe.empty() && a.find('=') == std::string::npos) {
      out.recipe = a;
    } else {
      out.overrides.push_back(a);
    }
  }
  if (out.recipe.empty()) {
    fmt::print(stderr, "usage: trainer {} RECIPE [key=value ...]\n", command);
    return false;
  }
  return true;
}

namespace {

bool has_flag(const RecipeArgs& a, const char* flag) {
  for (const auto& f : a.flags) {
    if (f == flag) return true;
  }
  return false;
}

bool resolve_or_report(const RecipeArgs& a, ConfigNode& out) {
  try {
    out = load_and_validate_recipe(a.recipe, a.overrides);
    return true;
  } catch (const recipe::RecipeError& e) {
    fmt::print(stderr, "{}", recipe::format_diagnostics(e.diagnostics));
    return false;
  }
}

bool check_flags(const RecipeArgs& a, std::initializer_list<const char*> allowed, const char* command) {
  for (const auto& f : a.flags) {
    bool ok = false;
    for (const char* x : allowed) ok = ok || f == x;
    if (!ok) {
      fmt::print(stderr, "trainer {}: unknown option '{}'\n", command, f);
      return false;
    }
  }
  return true;
}

}  // namespace

int validate_command(const Args& args) {
  RecipeArgs a;
  if (!parse_recipe_args(args, "validate", a) || !check_flags(a, {}, "validate")) return 2;
  ConfigNode recipe;
  if (!resolve_or_report(a, recipe)) return 2;
  fmt::print("{}", recipe::print_recipe(recipe));
  return 0;
}

int run_command(const Args& args) {
  RecipeArgs a;
  if (!parse_recipe_args(args, "run", a) || !check_flags(a, {"--quiet"}, "run")) return 2;
  ConfigNode recipe;
  if (!resolve_or_report(a, recipe)) return 2;
  TrainerOptions options;
  options.quiet = has_flag(a, "--quiet");
  try {
    Trainer trainer(recipe, options);
    trainer.run();
  } catch (const ConfigError& e) {
    // Raised while building from a valid-looking recipe (say, data that does not match
    // the model): still the recipe's fault, and still nothing was trained.
    fmt::print(stderr, "error: {}\nnothing was trained.\n", e.what());
    return 2;
  }
  return 0;
}

}  // namespace trainer::cli
