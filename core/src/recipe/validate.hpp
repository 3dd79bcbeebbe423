// Checks a composed recipe against its schema and fills defaults.
#pragma once
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "recipe/diagnostics.hpp"
#include "recipe/schema.hpp"
#include "trainer/config.hpp"
#include "trainer/plugin.hpp"

namespace trainer::recipe {

// Returns the plugin's accepted keys, or an error message (e.g. "no model plugin 'gtp';
// available: gpt") when it cannot be found.
using PluginKeyLookup = std::function<std::variant<std::vector<KeySpec>, std::string>(
    PluginKind, const std::string& name)>;

// Validates `recipe` against `schema`: unknown keys (with did-you-mean), types, ranges,
// choices, required keys and plugin names, collecting every error. Then fills each absent
// key that has a default (origin <default>), creates absent non-optional sections and
// expands plugin shorthands, so that afterwards every section is a map holding all its
// defaulted keys. A null value (`key:`) counts as absent. Keys of a plugin that cannot be
// found are not judged, to avoid a cascade behind the one real error.
std::vector<Diagnostic> validate_against(ConfigNode& recipe, const SectionSchema& schema,
                                         const PluginKeyLookup& lookup);

// validate_against(trainer_schema()) followed by check_recipe (checks.hpp).
std::vector<Diagnostic> validate_recipe(ConfigNode& recipe, const PluginKeyLookup& lookup);

}  // namespace trainer::recipe
