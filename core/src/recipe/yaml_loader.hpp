// YAML text -> ConfigNode, remembering where every value was written.
//
// A ConfigNode holds one origin, and errors need two kinds of position: "unknown key"
// must point at the key, "wrong type" at the value. A map entry's value therefore takes
// its *key's* position (same line as the value in block style, column of the key), which
// serves both: the key column identifies the entry the message names. List items, which
// have no key, keep their own position; a file's root map gets {file, 0, 0} ("the file").
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "recipe/diagnostics.hpp"
#include "trainer/config.hpp"

namespace trainer::recipe {

// Parses one YAML document. `file` is used verbatim in origins. On a syntax error appends
// a diagnostic at the error's position and returns nullopt.
std::optional<ConfigNode> parse_yaml(const std::string& text, const std::string& file,
                                     std::vector<Diagnostic>& diagnostics);

// Reads and parses a file; a missing or unreadable file is a diagnostic at `requested_at`
// (the `extends` entry that named it, or the file itself for the top-level recipe).
std::optional<ConfigNode> read_yaml_file(const std::filesystem::path& file,
                                         const Origin& requested_at,
                                         std::vector<Diagnostic>& diagnostics);

// Parses a value written outside a file (a command-line override, a KeySpec default):
// a scalar or a flow collection, every node taking `origin`. On a syntax error returns
// nullopt and sets *error.
std::optional<ConfigNode> parse_yaml_value(const std::string& text, const Origin& origin,
                                           std::string* error = nullptr);

}  // namespace trainer::recipe
