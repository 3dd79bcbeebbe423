#include "recipe/yaml_loader.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace trainer::recipe {
namespace {

class Converter {
 public:
  Converter(std::string file, std::optional<Origin> fixed, std::vector<Diagnostic>* diagnostics)
      : file_(std::move(file)), fixed_(std::move(fixed)), diagnostics_(diagnostics) {}

  ConfigNode convert(const YAML::Node& node, const Origin& origin) {
    switch (node.Type()) {
      case YAML::NodeType::Scalar: return ConfigNode::scalar(node.Scalar(), origin);
      case YAML::NodeType::Sequence: {
        ConfigNode list = ConfigNode::list(origin);
        for (const auto& item : node) list.push_back(convert(item, origin_of(item.Mark())));
        return list;
      }
      case YAML::NodeType::Map: return convert_map(node, origin);
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined: break;
    }
    ConfigNode null;
    null.set_origin(origin);
    return null;
  }

  Origin origin_of(const YAML::Mark& mark) const {
    if (fixed_) return *fixed_;
    if (mark.line < 0) return Origin{file_, 0, 0};
    return Origin{file_, mark.line + 1, mark.column + 1};
  }

 private:
  ConfigNode convert_map(const YAML::Node& node, const Origin& origin) {
    ConfigNode map = ConfigNode::map(origin);
    for (const auto& entry : node) {
      const Origin key_origin = origin_of(entry.first.Mark());
      if (!entry.first.IsScalar()) {
        report(key_origin, "map keys must be plain strings");
        continue;
      }
      const std::string& key = entry.first.Scalar();
      if (map.has(key)) {
        report(key_origin, fmt::format("duplicate key '{}' (first written at {})", key,
                                       map.at(key).origin().to_string()));
        continue;
      }
      map[key] = convert(entry.second, key_origin);
    }
    return map;
  }

  void report(Origin origin, std::string message) {
    if (diagnostics_) diagnostics_->push_back({std::move(origin), std::move(message), ""});
  }

  std::string file_;
  std::optional<Origin> fixed_;
  std::vector<Diagnostic>* diagnostics_;
};

}  // namespace

std::optional<ConfigNode> parse_yaml(const std::string& text, const std::string& file,
                                     std::vector<Diagnostic>& diagnostics) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    Origin at{file, 0, 0};
    if (e.mark.line >= 0) at = Origin{file, e.mark.line + 1, e.mark.column + 1};
    diagnostics.push_back({at, "YAML syntax error: " + e.msg, ""});
    return std::nullopt;
  }
  Converter converter(file, std::nullopt, &diagnostics);
  return converter.convert(root, Origin{file, 0, 0});
}

std::optional<ConfigNode> read_yaml_file(const std::filesystem::path& file,
                                         const Origin& requested_at,
                                         std::vector<Diagnostic>& diagnostics) {
  const std::string shown = file.generic_string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    diagnostics.push_back({requested_at, fmt::format("recipe file '{}' does not exist", shown),
                           ""});
    return std::nullopt;
  }
  if (std::filesystem::is_directory(file, ec)) {
    diagnostics.push_back(
        {requested_at, fmt::format("recipe file '{}' is a directory", shown), ""});
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in.is_open()) {
    diagnostics.push_back(
        {requested_at, fmt::format("cannot read recipe file '{}'", shown), ""});
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_yaml(text.str(), shown, diagnostics);
}

std::optional<ConfigNode> parse_yaml_value(const std::string& text, const Origin& origin,
                                           std::string* error) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    if (error) *error = e.msg;
    return std::nullopt;
  }
  // Text YAML reads as nothing ("", "#3") is meant literally; only the null words are null.
  if (node.IsNull() && text != "~" && text != "null" && text != "Null" && text != "NULL") {
    return ConfigNode::scalar(text, origin);
  }
  Converter converter("", origin, nullptr);
  return converter.convert(node, origin);
}

}  // namespace trainer::recipe
