#include "engine/resolve_recipe.hpp"

#include "engine/components.hpp"
#include "plugin/registry.hpp"
#include "recipe/diagnostics.hpp"
#include "recipe/recipe.hpp"
#include "recipe/validate.hpp"

namespace trainer {

ConfigNode load_and_validate_recipe(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  ConfigNode recipe = recipe::load_recipe(file, overrides);
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
