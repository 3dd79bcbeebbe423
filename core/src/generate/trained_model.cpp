#include "generate/trained_model.hpp"

#include <fmt/format.h>

#include "checkpoint/checkpoint_reader.hpp"
#include "checkpoint/checkpoint_writer.hpp"
#include "engine/components.hpp"
#include "engine/resolve_recipe.hpp"
#include "plugin/registry.hpp"

namespace trainer::generate {

namespace fs = std::filesystem;
using namespace trainer::checkpoint;

fs::path run_checkpoint_dir(const fs::path& run_dir, const ConfigNode& recipe) {
  const std::string dir = recipe.at("checkpoint").get_string("dir");
  return dir.empty() ? run_dir / "checkpoints" : fs::path(dir);
}

namespace {

FoundCheckpoint choose_checkpoint(const fs::path& dir, std::optional<std::int64_t> step,
                                  std::vector<std::string>& warnings) {
  const auto all = committed_checkpoints(dir);
  if (all.empty()) {
    throw RunError(fmt::format("no committed checkpoint in {}: the run saved none (checkpoint.every is 0, or it "
                               "stopped before the first save)",
                               dir.string()));
  }
  if (!step) {
    auto found = find_latest_good(dir, warnings);
    if (!found) throw RunError(fmt::format("every checkpoint in {} is damaged (see the warnings above)", dir.string()));
    return std::move(*found);
  }
  const fs::path chosen = dir / step_dir_name(*step);
  bool exists = false;
  std::string have;
  for (const auto& [s, path] : all) {
    exists = exists || s == *step;
    if (!have.empty()) have += ", ";
    have += std::to_string(s);
  }
  if (!exists) throw RunError(fmt::format("no checkpoint of step {} in {} (steps saved: {})", *step, dir.string(), have));
  try {
    Manifest m = read_manifest(chosen / "manifest.json");
    verify_checkpoint(chosen, m);
    return FoundCheckpoint{chosen, std::move(m)};
  } catch (const std::exception& e) {
    throw RunError(fmt::format("checkpoint {} is damaged: {}", chosen.string(), e.what()));
  }
}

}  // namespace

TrainedModel load_trained_model(const fs::path& run_dir, std::optional<std::int64_t> step) {
  if (!fs::is_directory(run_dir)) throw RunError(fmt::format("run directory {} does not exist", run_dir.string()));
  const fs::path recipe_file = run_dir / "recipe.yaml";
  if (!fs::exists(recipe_file)) {
    throw RunError(fmt::format("{} does not exist: {} is not a run directory (`trainer run` writes recipe.yaml "
                               "into output.dir)",
                               recipe_file.string(), run_dir.string()));
  }
  TrainedModel t;
  t.recipe = load_and_validate_recipe(recipe_file, {});
  const fs::path dir = run_checkpoint_dir(run_dir, t.recipe);
  if (!fs::is_directory(dir)) {
    throw RunError(fmt::format("no checkpoint folder {}: the run saved no checkpoint (set checkpoint.every)",
                               dir.string()));
  }
  FoundCheckpoint found = choose_checkpoint(dir, step, t.warnings);

  const auto plugins = recipe_plugin_path(t.recipe);
  const auto& backend = t.recipe.at("backend");
  t.backend = create_plugin<Backend>(find_plugin(PluginKind::backend, backend.get_string("plugin"), plugins),
                                     PluginContext{backend, nullptr});
  const auto& model = t.recipe.at("model");
  t.model = create_plugin<Model>(find_plugin(PluginKind::model, model.get_string("plugin"), plugins),
                                 PluginContext{model, t.backend.get()});
  t.params = std::make_unique<ParameterStore>(*t.backend, t.model->parameters());
  std::vector<float> host;
  for (std::size_t i = 0; i < t.params->size(); ++i) {
    const auto& spec = t.params->spec(i);
    const std::string name = param_tensor(spec.name);
    const TensorEntry* entry = found.manifest.find(name);
    if (!entry) {
      throw RunError(fmt::format("{} has no tensor '{}': it was saved by another model", found.dir.string(), name));
    }
    if (entry->shape != spec.shape) {
      throw RunError(fmt::format("{}: tensor '{}' has shape {} but the recipe's model wants {}", found.dir.string(),
                                 name, shape_string(entry->shape), shape_string(spec.shape)));
    }
    host.resize(static_cast<std::size_t>(shape_numel(spec.shape)));
    read_range(found.dir, found.manifest, name, 0, shape_numel(spec.shape), host.data());
    t.backend->copy_from_host(t.params->value(i), host.data());
  }
  t.model->bind(*t.params);
  t.checkpoint = found.dir;
  t.step = found.manifest.step;
  return t;
}

}  // namespace trainer::generate
