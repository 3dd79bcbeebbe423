// trainer: train neural networks from declarative YAML recipes.
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <exception>

#include "commands.hpp"

namespace {

constexpr const char* kUsage = R"(usage: trainer <command> [arguments]

commands:
  run RECIPE [key=value ...] [--quiet] [--stop-after=N]
                                         validate a recipe, then train it (resuming from
                                         its newest checkpoint; stop after N steps)
  validate RECIPE [key=value ...]        print the fully resolved recipe (defaults filled in)
  plan RECIPE [key=value ...]            print each pipeline rank's schedule and its predicted bubble
  plugins [--plugin-path DIR ...]        list the plugins found on the search path
  reference                              every recipe key (core and plugins) as Markdown
  sweep SWEEP [--dry-run] [--concurrency N] [key=value ...]
                                         run a grid of recipe variants and check expectations
  checkpoint inspect DIR [--verify] [--json]
                                         print a checkpoint's manifest (DIR: step-N/ or the folder)
  sample RUN_DIR --prompt TEXT [--tokens N] [--temperature T] [--top-k K] [--seed S]
         [--checkpoint STEP]           generate text from a run's newest good checkpoint
  data prepare --out DIR [--val-fraction F] FILE...
                                         turn text files into byte-level train/val shards
  data synth --out DIR [--vocab N] [--order N] [--branching N] [--train-tokens N]
             [--val-tokens N] [--seed N] [--concentration X]
                                         write a Markov corpus with a known entropy floor

overrides use dotted keys: trainer run r.yaml model.n_layer=4 train.steps=100
plugins are searched in: a recipe's plugin_path, $TRAINER_PLUGIN_PATH, then the install's
lib/trainer/plugins. Exit codes: 0 success, 1 failure while running, 2 bad recipe or usage.
)";

}  // namespace

int main(int argc, char** argv) {
  // Idle OpenMP and OpenBLAS threads spin by default; beside other processes (ranks, a
  // build) on few cores that spinning costs several times the work. Users may override.
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  ::setenv("OPENBLAS_NUM_THREADS", "1", 0);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    fmt::print("{}", kUsage);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    fmt::print("trainer {}\n", TRAINER_APP_VERSION);
    return 0;
  }
  const std::string command = argv[1];
  const trainer::cli::Args args(argv + 2, argv + argc);
  try {
    if (command == "run") return trainer::cli::run_command(args);
    if (command == "validate") return trainer::cli::validate_command(args);
    if (command == "plugins") return trainer::cli::plugins_command(args);
    if (command == "data") return trainer::cli::data_command(args);
    if (command == "reference") return trainer::cli::reference_command(args);
    if (command == "sweep") return trainer::cli::sweep_command(args);
    if (command == "checkpoint") return trainer::cli::checkpoint_command(args);
    if (command == "sample") return trainer::cli::sample_command(args);
    if (command == "plan") return trainer::cli::plan_command(args);
  } catch (const std::exception& e) {
    fmt::print(stderr, "trainer {}: error: {}\n", command, e.what());
    return 1;
  }
  fmt::print(stderr, "trainer: unknown command '{}'\n\n{}", command, kUsage);
  return 2;
}
