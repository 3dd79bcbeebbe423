// What a recipe may contain. The same KeySpec lists drive validation, default filling and
// (later) the generated recipe reference, so every key carries its documentation here.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/config.hpp"
#include "trainer/plugin.hpp"

namespace trainer::recipe {

// A map in the recipe. The root of the recipe is a SectionSchema too: its `keys` are the
// scalar top-level keys (precision, plugin_path) and its `sections` the top-level sections.
//
// A plugin section (plugin_kind set) has a `plugin` key naming the plugin (default
// `default_plugin`); it accepts its `keys` (the core's) plus the keys that plugin declares.
// Written as a scalar (`recompute: full`) it means `{plugin: full}`.
struct SectionSchema {
  std::string name;  // key in the parent; empty for the root
  std::string doc;
  std::optional<PluginKind> plugin_kind;
  std::string default_plugin;
  // Optional sections are validated only when written; others are created when absent so
  // that their defaults are filled and their required keys reported.
  bool optional = false;
  // A list section (faults) is a list of maps, each validated against `keys` like a section.
  bool list = false;
  std::vector<KeySpec> keys;
  std::vector<SectionSchema> sections;

  const KeySpec* find_key(std::string_view key) const;
  const SectionSchema* find_section(std::string_view key) const;
  // Names of keys and subsections (and `plugin` for plugin sections), in schema order.
  std::vector<std::string> accepted_names() const;
};

// Builders, so that a section reads as a short table:
//   Key::integer("steps").required().min(1).doc("optimizer steps to run")
class Key {
 public:
  static Key integer(std::string name) { return Key(std::move(name), KeyType::integer); }
  static Key number(std::string name) { return Key(std::move(name), KeyType::number); }
  static Key boolean(std::string name) { return Key(std::move(name), KeyType::boolean); }
  static Key string(std::string name) { return Key(std::move(name), KeyType::string); }
  static Key string_list(std::string name) { return Key(std::move(name), KeyType::string_list); }

  // YAML text of the default: "8", "cosine", "[]", "\"\"" (the empty string).
  Key& def(std::string value) { spec_.default_value = std::move(value); return *this; }
  Key& required() { spec_.required = true; return *this; }
  Key& min(double value) { spec_.min = value; return *this; }
  Key& max(double value) { spec_.max = value; return *this; }
  Key& choices(std::vector<std::string> values) { spec_.choices = std::move(values); return *this; }
  Key& doc(std::string text) { spec_.doc = std::move(text); return *this; }
  operator KeySpec() const { return spec_; }  // NOLINT: implicit by design, for tables

 private:
  Key(std::string name, KeyType type) {
    spec_.name = std::move(name);
    spec_.type = type;
  }
  KeySpec spec_;
};

SectionSchema plain_section(std::string name, std::string doc, std::vector<KeySpec> keys,
                            std::vector<SectionSchema> sections = {});
SectionSchema optional_section(std::string name, std::string doc, std::vector<KeySpec> keys,
                               std::vector<SectionSchema> sections = {});
// Optional, and written as a list of maps that each take `keys`.
SectionSchema list_section(std::string name, std::string doc, std::vector<KeySpec> keys);
SectionSchema plugin_section(std::string name, PluginKind kind, std::string default_plugin,
                             std::string doc, std::vector<KeySpec> keys = {});

// The trainer's recipe.
const SectionSchema& trainer_schema();

// Rewrites plugin-section shorthands (`recompute: full`) into maps (`{plugin: full}`) at
// every depth the schema knows, keeping the scalar's origin. Composition does this to each
// file before merging, so that `recompute: full` in a base and `recompute: {layers: 2}` in
// the extending file merge key by key.
void expand_plugin_shorthands(ConfigNode& node, const SectionSchema& schema);

}  // namespace trainer::recipe
