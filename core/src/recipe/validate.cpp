#include "recipe/validate.hpp"

#include <cmath>

#include <fmt/format.h>

#include "recipe/checks.hpp"
#include "recipe/suggest.hpp"
#include "recipe/yaml_loader.hpp"

namespace trainer::recipe {
namespace {

const char* with_article(KeyType type) {
  switch (type) {
    case KeyType::integer: return "an integer";
    case KeyType::number: return "a number";
    case KeyType::boolean: return "a boolean (true or false)";
    case KeyType::string: return "a string";
    case KeyType::string_list: return "a list of strings";
  }
  return "?";
}

std::string describe(const ConfigNode& node) {
  switch (node.kind()) {
    case ConfigNode::Kind::scalar: return fmt::format("'{}'", node.text());
    case ConfigNode::Kind::list: return "a list";
    case ConfigNode::Kind::map: return "a map";
    case ConfigNode::Kind::null: break;
  }
  return "nothing";
}

std::string format_bound(double v) {
  if (std::fabs(v) < 1e15 && v == std::floor(v)) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

ConfigNode default_node(const KeySpec& spec) {
  std::optional<ConfigNode> parsed = parse_yaml_value(spec.default_value, default_origin());
  return parsed ? std::move(*parsed) : ConfigNode::scalar(spec.default_value, default_origin());
}

std::string dotted(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

class Validator {
 public:
  Validator(const SectionSchema& root, const PluginKeyLookup& lookup,
            std::vector<Diagnostic>& out)
      : root_(root), lookup_(lookup), out_(out) {}

  void section(ConfigNode& node, const SectionSchema& schema, const std::string& path) {
    if (schema.list) {
      list_section(node, schema, path);
      return;
    }
    if (schema.plugin_kind && node.is_scalar()) {
      ConfigNode map = ConfigNode::map(node.origin());
      map["plugin"] = node;
      node = std::move(map);
    }
    if (node.is_null()) node = ConfigNode::map(node.origin());
    if (!node.is_map()) {
      report(node.origin(),
             fmt::format("section '{}' must be a map{}, found {}", path,
                         schema.plugin_kind ? " or a plugin name" : "", describe(node)));
      return;
    }

    std::vector<KeySpec> keys = schema.keys;
    std::string plugin_note;
    bool keys_known = true;
    if (schema.plugin_kind) keys_known = plugin_keys(node, schema, path, keys, plugin_note);

    std::vector<std::string> accepted = schema.accepted_names();
    for (std::size_t i = schema.keys.size(); i < keys.size(); ++i) accepted.push_back(keys[i].name);

    std::vector<std::string> erased;
    for (auto& [key, value] : node.entries()) {
      if (schema.plugin_kind && key == "plugin") continue;
      if (const KeySpec* spec = find(keys, key)) {
        if (!check_value(value, *spec, path)) erased.push_back(key);
      } else if (const SectionSchema* sub = schema.find_section(key)) {
        section(value, *sub, dotted(path, key));
      } else if (keys_known) {
        unknown_key(key, value.origin(), path, plugin_note, accepted);
      }
    }
    for (const auto& key : erased) node.erase(key);

    for (const auto& spec : keys) {
      if (node.has(spec.name)) continue;
      if (spec.required) {
        report(node.origin(), fmt::format("missing required key '{}' {}", spec.name,
                                          where(path, plugin_note)),
               spec.doc.empty() ? "" : fmt::format("{}: {}", spec.name, spec.doc));
      } else if (!spec.default_value.empty()) {
        node[spec.name] = default_node(spec);
      }
    }
    for (const auto& sub : schema.sections) {
      if (sub.optional || node.has(sub.name)) continue;
      ConfigNode& created = node[sub.name];
      created = ConfigNode::map(node.origin());
      section(created, sub, dotted(path, sub.name));
    }
  }

 private:
  // A list of maps, each checked as a section of `schema`'s keys: "faults[2]" in messages.
  void list_section(ConfigNode& node, const SectionSchema& schema, const std::string& path) {
    if (node.is_null()) node = ConfigNode::list(node.origin());
    if (!node.is_list()) {
      report(node.origin(), fmt::format("section '{}' must be a list of maps, found {}", path, describe(node)));
      return;
    }
    SectionSchema item_schema = schema;
    item_schema.list = false;
    ConfigNode checked = ConfigNode::list(node.origin());
    for (std::size_t i = 0; i < node.items().size(); ++i) {
      ConfigNode item = node.items()[i];
      const std::string item_path = fmt::format("{}[{}]", path, i);
      if (item.is_map()) {
        section(item, item_schema, item_path);
      } else {
        report(item.origin(), fmt::format("'{}' must be a map, found {}", item_path, describe(item)));
      }
      checked.push_back(std::move(item));
    }
    node = std::move(checked);
  }

  // Resolves the `plugin` key and appends the plugin's keys to `keys`. Returns false when
  // the plugin is unknown, so that its keys cannot be judged.
  bool plugin_keys(ConfigNode& node, const SectionSchema& schema, const std::string& path,
                   std::vector<KeySpec>& keys, std::string& note) {
    if (!node.has("plugin") || node["plugin"].is_null()) {
      node.erase("plugin");
      auto& entries = node.entries();
      entries.insert(entries.begin(),
                     {"plugin", ConfigNode::scalar(schema.default_plugin, default_origin())});
    }
    const ConfigNode& plugin = node["plugin"];
    if (!plugin.is_scalar() || plugin.text().empty()) {
      report(plugin.origin(), fmt::format("'{}.plugin' must be a plugin name, found {}", path,
                                          describe(plugin)));
      return false;
    }
    auto found = lookup_(*schema.plugin_kind, plugin.text());
    if (auto* error = std::get_if<std::string>(&found)) {
      report(plugin.origin(), *error);
      return false;
    }
    note = fmt::format(" (plugin {})", plugin.text());
    for (auto& spec : std::get<std::vector<KeySpec>>(found)) {
      // The core's own keys win: a plugin cannot redefine `lr`.
      if (spec.name != "plugin" && !find(keys, spec.name)) keys.push_back(std::move(spec));
    }
    return true;
  }

  // Returns false when the key is to be dropped (written as null, no default).
  bool check_value(ConfigNode& value, const KeySpec& spec, const std::string& path) {
    const std::string name = dotted(path, spec.name);
    if (value.is_null()) {
      if (!spec.default_value.empty()) {
        value = default_node(spec);
        return true;
      }
      if (spec.required) {
        report(value.origin(), fmt::format("'{}' is required but has no value", name),
               spec.doc.empty() ? "" : fmt::format("{}: {}", spec.name, spec.doc));
        return true;
      }
      return false;
    }
    if (spec.type == KeyType::string_list) {
      if (value.is_scalar()) {
        ConfigNode list = ConfigNode::list(value.origin());
        list.push_back(value);
        value = std::move(list);
      }
      if (!value.is_list()) return type_error(value, spec, name);
      for (const auto& item : value.items()) {
        if (!item.is_scalar()) return type_error(item, spec, name);
        check_choice(item, spec, name);
      }
      return true;
    }
    if (!value.is_scalar()) return type_error(value, spec, name);
    try {
      switch (spec.type) {
        case KeyType::integer: check_range(value, static_cast<double>(value.as_int()), spec, name); break;
        case KeyType::number: check_range(value, value.as_double(), spec, name); break;
        case KeyType::boolean: value.as_bool(); break;
        case KeyType::string: check_choice(value, spec, name); break;
        case KeyType::string_list: break;
      }
    } catch (const ConfigError&) {
      return type_error(value, spec, name);
    }
    return true;
  }

  bool type_error(const ConfigNode& value, const KeySpec& spec, const std::string& name) {
    report(value.origin(), fmt::format("'{}' must be {}, found {}", name,
                                       with_article(spec.type), describe(value)));
    return true;
  }

  void check_range(const ConfigNode& value, double v, const KeySpec& spec, const std::string& name) {
    const bool low = spec.min && v < *spec.min;
    const bool high = spec.max && v > *spec.max;
    if (!low && !high) return;
    std::string bound;
    if (spec.min && spec.max) {
      bound = fmt::format("between {} and {}", format_bound(*spec.min), format_bound(*spec.max));
    } else if (spec.min) {
      bound = fmt::format("at least {}", format_bound(*spec.min));
    } else {
      bound = fmt::format("at most {}", format_bound(*spec.max));
    }
    report(value.origin(), fmt::format("'{}' must be {}, found {}", name, bound, value.text()));
  }

  void check_choice(const ConfigNode& value, const KeySpec& spec, const std::string& name) {
    if (spec.choices.empty()) return;
    for (const auto& c : spec.choices) {
      if (c == value.text()) return;
    }
    auto match = closest_match(value.text(), spec.choices);
    report(value.origin(),
           fmt::format("'{}' must be one of {}; found '{}'", name, join(spec.choices), value.text()),
           match ? fmt::format("did you mean '{}'?", *match) : "");
  }

  void unknown_key(const std::string& key, const Origin& origin, const std::string& path,
                   const std::string& plugin_note, const std::vector<std::string>& accepted) {
    std::string hint;
    if (!closest_match(key, accepted) && path.empty()) {
      // A section's key written at the top level, e.g. `seed:` for train.seed.
      for (const auto& s : root_.sections) {
        if (s.find_key(key)) {
          hint = fmt::format("'{}' belongs in a section: did you mean '{}.{}'?", key, s.name, key);
          break;
        }
      }
    }
    if (hint.empty()) hint = suggestion_hint(key, accepted);
    report(origin, fmt::format("unknown key '{}' {}", key, where(path, plugin_note)), hint);
  }

  static std::string where(const std::string& path, const std::string& plugin_note) {
    if (path.empty()) return "at the top level";
    return fmt::format("in section '{}'{}", path, plugin_note);
  }

  static const KeySpec* find(const std::vector<KeySpec>& keys, std::string_view name) {
    for (const auto& k : keys) {
      if (k.name == name) return &k;
    }
    return nullptr;
  }

  void report(Origin origin, std::string message, std::string hint = "") {
    out_.push_back({std::move(origin), std::move(message), std::move(hint)});
  }

  const SectionSchema& root_;
  const PluginKeyLookup& lookup_;
  std::vector<Diagnostic>& out_;
};

}  // namespace

std::vector<Diagnostic> validate_against(ConfigNode& recipe, const SectionSchema& schema,
                                         const PluginKeyLookup& lookup) {
  std::vector<Diagnostic> diagnostics;
  if (!recipe.is_map() && !recipe.is_null()) {
    diagnostics.push_back({recipe.origin(), "a recipe must be a map of sections", ""});
    return diagnostics;
  }
  Validator(schema, lookup, diagnostics).section(recipe, schema, "");
  return diagnostics;
}

std::vector<Diagnostic> validate_recipe(ConfigNode& recipe, const PluginKeyLookup& lookup) {
  std::vector<Diagnostic> diagnostics = validate_against(recipe, trainer_schema(), lookup);
  std::vector<Diagnostic> cross = check_recipe(recipe);
  diagnostics.insert(diagnostics.end(), cross.begin(), cross.end());
  return diagnostics;
}

}  // namespace trainer::recipe
