// Command-line overrides: `section.key=value`, applied after composition.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "recipe/diagnostics.hpp"
#include "recipe/schema.hpp"
#include "trainer/config.hpp"

namespace trainer::recipe {

struct Override {
  std::vector<std::string> path;  // "train.steps" -> {"train", "steps"}
  ConfigNode value;               // a YAML scalar or flow collection, origin <command line>
};

// Parses "a.b.c=value". A value that is not valid YAML, a missing '=' or an empty key
// segment is a diagnostic naming the override text. An empty value is the empty string.
std::optional<Override> parse_override(const std::string& text,
                                       std::vector<Diagnostic>& diagnostics);

// Sets each override in turn, creating missing sections. A map value merges into an
// existing map like `extends` does; anything else replaces. Stepping through a plugin
// shorthand (`recompute: full`, then `recompute.layers=2`) expands it to a map first;
// stepping through any other value is a diagnostic.
void apply_overrides(ConfigNode& recipe, const std::vector<std::string>& overrides,
                     const SectionSchema& schema, std::vector<Diagnostic>& diagnostics);

}  // namespace trainer::recipe
