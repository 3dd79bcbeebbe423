// trainer run / trainer validate: resolve a recipe (extends, overrides, validation against
// the core schema and every plugin's keys), then print it or train it.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "commands.hpp"
#include "engine/resolve_recipe.hpp"
#include "engine/trainer.hpp"
#include "launch/elastic.hpp"
#include "launch/launch_config.hpp"
#include "launch/supervisor.hpp"
#include "launch/tcp_store.hpp"
#include "launch/worker_health.hpp"
#include "recipe/diagnostics.hpp"
#include "recipe/print.hpp"
#include "recipe/recipe.hpp"
#include "trainer/failure.hpp"

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
  } catch (const BadStepsError&) {
    return kBadStepsExitCode;  // rank 0 has said why
  } catch (const ConfigError& e) {
    // Raised while building from a valid-looking recipe (say, data that does not match
    // the model): still the recipe's fault, and still nothing was trained.
    fmt::print(stderr, "error: {}\nnothing was trained.\n", e.what());
    return 2;
  }
  return 0;
}

// --stop-after=N: stop once N steps are done, as if the job were interrupted there.
bool take_stop_after(RecipeArgs& a, std::int64_t& stop_after) {
  static const std::string prefix = "--stop-after=";
  for (auto it = a.flags.begin(); it != a.flags.end(); ++it) {
    if (it->rfind(prefix, 0) != 0) continue;
    try {
      std::size_t used = 0;
      stop_after = std::stoll(it->substr(prefix.size()), &used);
      if (used != it->size() - prefix.size() || stop_after < 0) throw std::invalid_argument("");
    } catch (const std::exception&) {
      fmt::print(stderr, "trainer run: {} needs a step count >= 0\n", *it);
      return false;
    }
    a.flags.erase(it);
    return true;
  }
  return true;
}

std::vector<std::string> with_world(std::vector<std::string> overrides, int nproc, int nnodes) {
  overrides.push_back("launch.nproc=" + std::to_string(nproc));
  overrides.push_back("launch.nnodes=" + std::to_string(nnodes));
  return overrides;
}

// Attempts the policy may make in all (for messages): 1 + restart.max_restarts.
int restart_limit(const ConfigNode& recipe) {
  const ConfigNode& failure = recipe.at("failure");
  return failure.has("max_restarts") ? 1 + static_cast<int>(failure.get_int("max_restarts")) : 1;
}

std::chrono::milliseconds seconds_key(const ConfigNode& section, const char* key) {
  return std::chrono::milliseconds(std::llround(1000.0 * section.get_double(key)));
}

// The job after the policy excluded a rank: one process fewer, the data-parallel degree
// recomputed, faults following their slots; validated before anything starts.
struct Shrunk {
  std::vector<std::string> overrides;  // appended to the job's own
  bool ok = false;
};
Shrunk shrink(const RecipeArgs& job, const ConfigNode& recipe, const launch::ElasticSlots& slots, int nnodes) {
  Shrunk out;
  out.overrides = {"parallel.dp=auto"};
  const std::string faults = launch::faults_override(recipe, slots);
  if (!faults.empty()) out.overrides.push_back(faults);
  RecipeArgs check = job;
  for (const auto& o : out.overrides) check.overrides.push_back(o);
  check.overrides.push_back("launch.nproc=" + std::to_string(slots.size()));
  check.overrides.push_back("launch.nnodes=" + std::to_string(nnodes));
  try {
    load_and_validate_recipe(check.recipe, check.overrides);
    out.ok = true;
  } catch (const recipe::RecipeError& e) {
    fmt::print(stderr, "trainer: elastic: the job cannot continue on {} process(es):\n{}", slots.size(),
               recipe::format_diagnostics(e.diagnostics));
  }
  return out;
}

// Runs the job under the supervisor; after a worker failure the failure policy decides
// whether to start it again, and (elastic) without which rank. TRAINER_ATTEMPT tells the
// workers which attempt they are in (faults fire in attempt 0 only, unless `attempts: all`);
// they resume from the newest checkpoint on their own, resharded to the current degree.
int supervise_with_policy(launch::LaunchConfig config, const std::vector<std::string>& worker_argv,
                          FailurePolicy& policy, int attempts, const RecipeArgs& job, const ConfigNode& recipe) {
  launch::ElasticSlots slots(config.nproc * config.nnodes);
  std::vector<std::string> extra;  // overrides of an elastic shrink
  for (int attempt = 0;; ++attempt) {
    ::setenv("TRAINER_ATTEMPT", std::to_string(attempt).c_str(), 1);
    WorkerFailure failure{-1, 0, attempt};
    launch::SupervisorOptions options;
    const ConfigNode& watchdog = recipe.at("watchdog");
    options.heartbeat_timeout = seconds_key(watchdog, "heartbeat_timeout_s");
    std::vector<std::string> argv = worker_argv;
    argv.insert(argv.end(), extra.begin(), extra.end());
    options.on_worker_failure = [&failure](int rank, int code) {
      failure.rank = rank;
      failure.exit_code = code;
    };
    const int code = launch::supervise(config, argv, options);
    // 0: done; 130/143: the user stopped it; 2: the recipe is at fault, and would be again.
    if (code == 0 || code == 130 || code == 143 || code == 2 || failure.rank < 0) return code;
    const FailureAction action = policy.on_worker_failure(failure);
    if (action == FailureAction::abort) return code;
    if (action == FailureAction::exclude) {
      if (config.nnodes > 1 || slots.size() < 2) {
        fmt::print(stderr, "trainer: elastic: cannot leave out rank {}: {}\n", failure.rank,
                   config.nnodes > 1 ? "shrinking a job over several nodes is not supported"
                                     : "it is the last rank");
        return code;
      }
      launch::ElasticSlots fewer = slots;
      const int slot = fewer.exclude(failure.rank);
      Shrunk next = shrink(job, recipe, fewer, config.nnodes);
      if (!next.ok) return code;
      slots = fewer;
      extra = next.overrides;
      config.nproc = slots.size();
      fmt::print(stderr,
                 "trainer: elastic: rank {} (launch slot {}) failed in consecutive attempts; restarting the job "
                 "without it at data-parallel degree {} (attempt {} of {})\n",
                 failure.rank, slot, slots.size(), attempt + 2, attempts);
    } else {
      fmt::print(stderr, "trainer: restarting the job (attempt {} of {}) after rank {} exited with status {}\n",
                 attempt + 2, attempts, failure.rank, failure.exit_code);
    }
    std::fflush(stderr);
    const double wait_s = policy.backoff_seconds(attempt + 1);
    if (wait_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
  }
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
  if (!parse_recipe_args(rest, "run", a)) return 2;
  TrainerOptions options;
  RecipeArgs checked = a;  // --stop-after=N is forwarded to workers as it is
  if (!take_stop_after(checked, options.stop_after) || !check_flags(checked, {"--quiet"}, "run")) return 2;
  options.quiet = has_flag(a, "--quiet");
  const auto env = launch::environment_map();

  if (auto id = launch::worker_identity_from_env(env)) {
    RecipeArgs worker = a;
    worker.overrides = with_world(a.overrides, id->local_world_size, id->world_size / id->local_world_size);
    ConfigNode recipe;
    if (!resolve_or_report(worker, recipe)) return 2;
    launch::TcpStoreClient store(id->store_addr, id->store_port);
    // Heartbeats from now on, and this rank's flight record if a collective fails or hangs.
    const launch::WorkerHealth health(*id, seconds_key(recipe.at("watchdog"), "heartbeat_interval_s"),
                                      std::filesystem::path(recipe.at("output").get_string("dir")) / "flight");
    options.rank = RankContext{id->rank, id->world_size, &store};
    const int code = train_process(recipe, options);
    // The store lives as long as node 0's supervisor, which ends when node 0's workers
    // do: they leave only once every rank has, so no rank elsewhere loses the store
    // while it still needs it.
    if (code == 0) {
      if (store.add("trainer/left", 1) == id->world_size) store.set("trainer/all-left", {});
      if (id->rank < id->local_world_size) store.wait({"trainer/all-left"}, std::chrono::minutes(10));
    }
    return code;
  }

  // The world size comes from the flags, the environment (Slurm, torchrun) or the recipe's
  // launch.nproc, and the recipe is validated once, for that world: a mesh such as
  // parallel.dp=2 is only valid for the right number of processes.
  int recipe_nproc = 1;
  try {
    const ConfigNode raw = recipe::load_recipe(a.recipe, a.overrides);
    if (raw.is_map() && raw.has("launch") && raw.at("launch").is_map() && raw.at("launch").has("nproc")) {
      recipe_nproc = static_cast<int>(raw.at("launch").at("nproc").as_int());
    }
  } catch (const std::exception&) {
    // Malformed: validation below reports it with its position.
  }
  const auto config = launch::resolve_launch(flags, recipe_nproc, env);
  RecipeArgs job = a;
  job.overrides = with_world(a.overrides, config.nproc, config.nnodes);
  ConfigNode recipe;
  if (!resolve_or_report(job, recipe)) return 2;
  std::unique_ptr<FailurePolicy> policy;
  try {
    policy = create_failure_policy(recipe);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
  const std::string& policy_name = recipe.at("failure").get_string("plugin");
  // Under `restart` even one process runs under a supervisor, which can start it again.
  if (config.nproc * config.nnodes == 1 && policy_name == "abort") return train_process(recipe, options);
  std::vector<std::string> worker_argv{std::filesystem::read_symlink("/proc/self/exe").string(), "run", a.recipe};
  worker_argv.insert(worker_argv.end(), a.overrides.begin(), a.overrides.end());
  worker_argv.insert(worker_argv.end(), a.flags.begin(), a.flags.end());
  if (!options.quiet) {
    fmt::print("trainer: starting {} worker(s) on node {} of {} (world size {})\n", config.nproc, config.node_rank,
               config.nnodes, config.nproc * config.nnodes);
    std::fflush(stdout);
  }
  return supervise_with_policy(config, worker_argv, *policy, restart_limit(recipe), a, recipe);
}

}  // namespace trainer::cli
