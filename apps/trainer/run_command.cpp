// trainer run / trainer validate: resolve a recipe (extends, overrides, validation against
// the core schema and every plugin's keys), then print it or train it.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "engine/resolve_recipe.hpp"
#include "engine/trainer.hpp"
#include "launch/launch_config.hpp"
#include "launch/supervisor.hpp"
#include "launch/tcp_store.hpp"
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

namespace {

int train_process(const ConfigNode& recipe, const TrainerOptions& options) {
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

std::vector<std::string> with_world(std::vector<std::string> overrides, int nproc, int nnodes) {
  overrides.push_back("launch.nproc=" + std::to_string(nproc));
  overrides.push_back("launch.nnodes=" + std::to_string(nnodes));
  return overrides;
}

}  // namespace

// One process trains alone; several are started by a supervisor (this same command) as
// workers, each of which finds its rank in the environment the supervisor gave it.
int run_command(const Args& args) {
  launch::CliLaunchFlags flags;
  Args rest;
  for (std::size_t i = 0; i < args.size();) {
    if (!launch::parse_launch_flag(args, i, flags)) rest.push_back(args[i++]);  // it advances i itself
  }
  RecipeArgs a;
  if (!parse_recipe_args(rest, "run", a) || !check_flags(a, {"--quiet"}, "run")) return 2;
  TrainerOptions options;
  options.quiet = has_flag(a, "--quiet");
  const auto env = launch::environment_map();

  if (auto id = launch::worker_identity_from_env(env)) {
    RecipeArgs worker = a;
    worker.overrides = with_world(a.overrides, id->local_world_size, id->world_size / id->local_world_size);
    ConfigNode recipe;
    if (!resolve_or_report(worker, recipe)) return 2;
    launch::TcpStoreClient store(id->store_addr, id->store_port);
    options.rank = RankContext{id->rank, id->world_size, &store};
    return train_process(recipe, options);
  }

  ConfigNode recipe;
  if (!resolve_or_report(a, recipe)) return 2;
  const auto config = launch::resolve_launch(flags, static_cast<int>(recipe.at("launch").get_int("nproc")), env);
  if (config.nproc * config.nnodes == 1) return train_process(recipe, options);

  // Validate the recipe for the real world size before starting anything.
  RecipeArgs job = a;
  job.overrides = with_world(a.overrides, config.nproc, config.nnodes);
  if (!resolve_or_report(job, recipe)) return 2;
  std::vector<std::string> worker_argv{std::filesystem::read_symlink("/proc/self/exe").string(), "run", a.recipe};
  worker_argv.insert(worker_argv.end(), a.overrides.begin(), a.overrides.end());
  worker_argv.insert(worker_argv.end(), a.flags.begin(), a.flags.end());
  if (!options.quiet) {
    fmt::print("trainer: starting {} worker(s) on node {} of {} (world size {})\n", config.nproc, config.node_rank,
               config.nnodes, config.nproc * config.nnodes);
    std::fflush(stdout);
  }
  return launch::supervise(config, worker_argv);
}

}  // namespace trainer::cli
