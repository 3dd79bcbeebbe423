// A recipe file made ready to run: composed, overridden, validated against the core schema
// and against the keys each named plugin declares (found on the recipe's plugin path).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "trainer/config.hpp"

namespace trainer {

// Throws recipe::RecipeError with every problem found.
ConfigNode load_and_validate_recipe(const std::filesystem::path& file, const std::vector<std::string>& overrides);

}  // namespace trainer
