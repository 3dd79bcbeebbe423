// The `trainer` subcommands. Each returns the process exit code: 0 success, 1 a failure
// while running, 2 a bad recipe or bad usage (nothing was run).
#pragma once
#include <string>
#include <vector>

namespace trainer::cli {

using Args = std::vector<std::string>;

int run_command(const Args& args);
int validate_command(const Args& args);
int plugins_command(const Args& args);
int data_command(const Args& args);
int reference_command(const Args& args);
int sweep_command(const Args& args);
int checkpoint_command(const Args& args);
int sample_command(const Args& args);
int plan_command(const Args& args);

// Splits `RECIPE [key=value ...] [--flag ...]`; returns false (after printing why) on bad usage.
struct RecipeArgs {
  std::string recipe;
  std::vector<std::string> overrides;
  std::vector<std::string> flags;
};
bool parse_recipe_args(const Args& args, const char* command, RecipeArgs& out);

}  // namespace trainer::cli
