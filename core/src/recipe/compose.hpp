// `extends`: a recipe names base recipes and states only what differs from them.
#pragma once
#include <filesystem>
#include <vector>

#include "recipe/diagnostics.hpp"
#include "recipe/schema.hpp"
#include "trainer/config.hpp"

namespace trainer::recipe {

// Deep merge: maps merge key by key (new keys appended, so the base's order is kept);
// anything else in `overlay` (scalar, list, null) replaces what `base` had. A merged map
// takes the overlay's origin: the file that last wrote the section.
void merge_into(ConfigNode& base, ConfigNode overlay);

// Loads `file` and, recursively, the files its top-level `extends` names (one path or a
// list, relative to the extending file, applied in order), then merges the file over
// them and drops `extends`. Problems (missing files, syntax errors, cycles) are appended
// to `diagnostics`; whatever could be loaded is returned, always as a map.
ConfigNode compose_recipe_file(const std::filesystem::path& file, const SectionSchema& schema,
                               std::vector<Diagnostic>& diagnostics);

}  // namespace trainer::recipe
