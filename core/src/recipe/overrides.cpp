#include "recipe/overrides.hpp"

#include <fmt/format.h>

#include "recipe/compose.hpp"
#include "recipe/yaml_loader.hpp"

namespace trainer::recipe {
namespace {

constexpr const char* kOverrideHint = "write overrides as section.key=value, e.g. train.steps=100";

std::vector<std::string> split_path(const std::string& key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string joined(const std::vector<std::string>& path, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out += (i ? "." : "") + path[i];
  return out;
}

}  // namespace

std::optional<Override> parse_override(const std::string& text,
                                       std::vector<Diagnostic>& diagnostics) {
  const Origin at = command_line_origin();
  const std::size_t eq = text.find('=');
  if (eq == std::string::npos) {
    diagnostics.push_back({at, fmt::format("override '{}' has no '='", text), kOverrideHint});
    return std::nullopt;
  }
  const std::string key = text.substr(0, eq);
  Override result;
  result.path = split_path(key);
  for (const auto& part : result.path) {
    if (part.empty() || part.find_first_of(" \t") != std::string::npos) {
      diagnostics.push_back(
          {at, fmt::format("override '{}' has a malformed key '{}'", text, key), kOverrideHint});
      return std::nullopt;
    }
  }
  std::string error;
  std::optional<ConfigNode> value = parse_yaml_value(text.substr(eq + 1), at, &error);
  if (!value) {
    diagnostics.push_back({at, fmt::format("override '{}': cannot parse the value: {}", text, error),
                           "quote values containing YAML syntax, e.g. key='[a'"});
    return std::nullopt;
  }
  result.value = std::move(*value);
  return result;
}

void apply_overrides(ConfigNode& recipe, const std::vector<std::string>& overrides,
                     const SectionSchema& schema, std::vector<Diagnostic>& diagnostics) {
  if (!recipe.is_map()) recipe = ConfigNode::map(recipe.origin());
  for (const auto& text : overrides) {
    std::optional<Override> parsed = parse_override(text, diagnostics);
    if (!parsed) continue;
    const auto& path = parsed->path;
    ConfigNode* node = &recipe;
    const SectionSchema* section = &schema;
    bool ok = true;
    for (std::size_t i = 0; i + 1 < path.size() && ok; ++i) {
      const SectionSchema* child_schema = section ? section->find_section(path[i]) : nullptr;
      if (!node->has(path[i])) {
        (*node)[path[i]] = ConfigNode::map(command_line_origin());
      }
      ConfigNode& child = (*node)[path[i]];
      if (child.is_null()) {
        child = ConfigNode::map(command_line_origin());
      } else if (child.is_scalar() && child_schema && child_schema->plugin_kind) {
        ConfigNode map = ConfigNode::map(child.origin());
        map["plugin"] = child;
        child = std::move(map);
      } else if (!child.is_map()) {
        diagnostics.push_back(
            {command_line_origin(),
             fmt::format("override '{}': '{}' is a value, not a section (set at {})", text,
                         joined(path, i + 1), child.origin().to_string()),
             ""});
        ok = false;
        break;
      }
      node = &child;
      section = child_schema;
    }
    if (!ok) continue;
    ConfigNode& target = (*node)[path.back()];
    if (target.is_map() && parsed->value.is_map()) {
      merge_into(target, std::move(parsed->value));
    } else {
      target = std::move(parsed->value);
    }
  }
  expand_plugin_shorthands(recipe, schema);
}

}  // namespace trainer::recipe
