#include "engine/resolve_recipe.hpp"

#include <string>

#include "engine/components.hpp"
#include "plugin/registry.hpp"
#include "recipe/diagnostics.hpp"
#include "recipe/recipe.hpp"
#include "recipe/validate.hpp"

namespace trainer {

namespace {

// The recipe's backend plugin name (`backend: cuda` or `backend: {plugin: cuda}`), or "".
std::string backend_plugin(const ConfigNode& recipe) {
  if (!recipe.has("backend")) return "";
  const auto& b = recipe.at("backend");
  if (b.is_scalar()) return b.text();
  if (b.is_map() && b.has("plugin") && b.at("plugin").is_scalar()) return b.at("plugin").text();
  return "";
}

// A job of several processes needs a comm plugin; one process needs none, and must not
// fail for want of one. Device tensors need a device comm plugin: nccl for backend cuda
// (validation then says so if this build has no nccl plugin), gloo otherwise. Values that
// do not parse are left for validation to report.
void default_comm_for_multi_rank(ConfigNode& recipe) {
  if (!recipe.is_map() || recipe.has("comm") || !recipe.has("launch") || !recipe.at("launch").is_map()) return;
  std::int64_t world = 1;
  try {
    const auto& launch = recipe.at("launch");
    if (launch.has("nproc")) world *= launch.at("nproc").as_int();
    if (launch.has("nnodes")) world *= launch.at("nnodes").as_int();
  } catch (const ConfigError&) {
    return;
  }
  if (world > 1) {
    const char* comm = backend_plugin(recipe) == "cuda" ? "nccl" : "gloo";
    recipe["comm"] = ConfigNode::scalar(comm, recipe::default_origin());
  }
}

}  // namespace

ConfigNode load_and_validate_recipe(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  ConfigNode recipe = recipe::load_recipe(file, overrides);
  default_comm_for_multi_rank(recipe);
  std::vector<std::filesystem::path> dirs;
  try {
    dirs = recipe_plugin_path(recipe);
  } catch (const ConfigError&) {
    dirs = plugin_search_path();  // validation reports the bad plugin_path itself
  }
  auto diagnostics = recipe::validate_recipe(
      recipe, [&dirs](PluginKind kind, const std::string& name) { return plugin_keys(dirs, kind, name); });
  if (!diagnostics.empty()) throw recipe::RecipeError(std::move(diagnostics));
  return recipe;
}

}  // namespace trainer
