#include "recipe/recipe.hpp"

#include "recipe/compose.hpp"
#include "recipe/overrides.hpp"

namespace trainer::recipe {

ConfigNode load_recipe(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  std::vector<Diagnostic> diagnostics;
  ConfigNode recipe = compose_recipe_file(file, trainer_schema(), diagnostics);
  apply_overrides(recipe, overrides, trainer_schema(), diagnostics);
  if (!diagnostics.empty()) throw RecipeError(std::move(diagnostics));
  return recipe;
}

ConfigNode resolve_recipe(const std::filesystem::path& file,
                          const std::vector<std::string>& overrides, const PluginKeyLookup& lookup) {
  ConfigNode recipe = load_recipe(file, overrides);
  std::vector<Diagnostic> diagnostics = validate_recipe(recipe, lookup);
  if (!diagnostics.empty()) throw RecipeError(std::move(diagnostics));
  return recipe;
}

}  // namespace trainer::recipe
