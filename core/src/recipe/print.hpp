// The resolved recipe as YAML: what `trainer validate` shows, and what a run records so
// that it can be repeated. load_recipe reads it back into the same tree.
#pragma once
#include <string>

#include "trainer/config.hpp"

namespace trainer::recipe {

// Block style in insertion order; lists of scalars in flow style ([a, b]); scalars quoted
// only where YAML would read them differently (empty, null words, indicators, ": ").
std::string print_recipe(const ConfigNode& recipe);

// A scalar as YAML text, double-quoted when needed.
std::string yaml_scalar(const std::string& text);

}  // namespace trainer::recipe
