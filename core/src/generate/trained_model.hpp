// A trained run made ready to sample from: its recipe (RUN_DIR/recipe.yaml), the recipe's
// backend and model, and the parameters of its newest good checkpoint (or a given step),
// all in this one process whatever layout and degree the run trained with.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/config.hpp"
#include "trainer/model.hpp"
#include "trainer/parameters.hpp"

namespace trainer::generate {

// A run directory or checkpoint that cannot be sampled from; the message says why.
class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainedModel {
  ConfigNode recipe;
  std::unique_ptr<Backend> backend;  // first: destroyed last
  std::unique_ptr<Model> model;
  std::unique_ptr<ParameterStore> params;
  std::filesystem::path checkpoint;  // the step-N directory loaded
  std::int64_t step = 0;             // optimizer steps the checkpoint had taken
  std::vector<std::string> warnings; // damaged or uncommitted checkpoints skipped
};

// The checkpoint folder of a run: checkpoint.dir, or RUN_DIR/checkpoints when that is "".
std::filesystem::path run_checkpoint_dir(const std::filesystem::path& run_dir, const ConfigNode& recipe);

// Throws RunError (no run directory, no recipe, no checkpoint, a damaged requested step),
// recipe::RecipeError for a recipe that no longer validates, PluginError.
TrainedModel load_trained_model(const std::filesystem::path& run_dir, std::optional<std::int64_t> step);

}  // namespace trainer::generate
