// Entry points of the recipe system: load (compose + overrides), validate, print.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "recipe/checks.hpp"
#include "recipe/diagnostics.hpp"
#include "recipe/print.hpp"
#include "recipe/schema.hpp"
#include "recipe/validate.hpp"
#include "trainer/config.hpp"

namespace trainer::recipe {

// Reads `file` (origins name it as given), resolves `extends`, applies command-line
// overrides ("train.steps=100"). Throws RecipeError holding every problem found.
ConfigNode load_recipe(const std::filesystem::path& file, const std::vector<std::string>& overrides);

// load_recipe then validate_recipe; throws RecipeError if either finds a problem, so the
// result is a complete recipe with every default filled.
ConfigNode resolve_recipe(const std::filesystem::path& file,
                          const std::vector<std::string>& overrides, const PluginKeyLookup& lookup);

}  // namespace trainer::recipe
