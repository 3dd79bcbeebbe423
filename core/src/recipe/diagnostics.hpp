// Recipe errors are collected, never thrown one at a time: a user fixing a recipe wants
// every problem in one run, each pointing at the file position that caused it.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/config.hpp"

namespace trainer::recipe {

struct Diagnostic {
  Origin origin;
  std::string message;
  std::string hint;  // empty when there is nothing useful to add
};

// One block per diagnostic ("file:line:col: error: message" plus an indented hint line),
// then "N error(s); nothing was run.".
std::string format_diagnostics(const std::vector<Diagnostic>& diagnostics);

// what() is format_diagnostics(diagnostics).
class RecipeError : public std::runtime_error {
 public:
  explicit RecipeError(std::vector<Diagnostic> diagnostics);
  std::vector<Diagnostic> diagnostics;
};

// The origins of values that were not written in a file.
Origin default_origin();       // {"<default>", 0, 0}
Origin command_line_origin();  // {"<command line>", 0, 0}

}  // namespace trainer::recipe
