#include "recipe/diagnostics.hpp"

#include <fmt/format.h>

namespace trainer::recipe {

std::string format_diagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) {
    out += fmt::format("{}: error: {}\n", d.origin.to_string(), d.message);
    if (!d.hint.empty()) out += fmt::format("    hint: {}\n", d.hint);
  }
  out += fmt::format("{} error(s); nothing was run.\n", diagnostics.size());
  return out;
}

RecipeError::RecipeError(std::vector<Diagnostic> diags)
    : std::runtime_error(format_diagnostics(diags)), diagnostics(std::move(diags)) {}

Origin default_origin() { return Origin{"<default>", 0, 0}; }
Origin command_line_origin() { return Origin{"<command line>", 0, 0}; }

}  // namespace trainer::recipe
