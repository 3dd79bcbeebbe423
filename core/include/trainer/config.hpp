// ConfigNode: a resolved recipe tree (maps, lists, scalars) that remembers where each value
// came from; KeySpec: how a component declares the keys it accepts, with types and defaults.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trainer {

// Where a value was written: a file position, or a command-line override.
struct Origin {
  std::string file;  // recipe path, or "<command line>" / "<default>"
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown
  std::string to_string() const;  // "file:line:column"
};

class ConfigNode {
 public:
  enum class Kind { null, scalar, list, map };

  ConfigNode() = default;
  static ConfigNode scalar(std::string value, Origin origin = {});
  static ConfigNode map(Origin origin = {});
  static ConfigNode list(Origin origin = {});

  Kind kind() const { return kind_; }
  bool is_map() const { return kind_ == Kind::map; }
  bool is_list() const { return kind_ == Kind::list; }
  bool is_scalar() const { return kind_ == Kind::scalar; }
  bool is_null() const { return kind_ == Kind::null; }
  const Origin& origin() const { return origin_; }
  void set_origin(Origin origin) { origin_ = std::move(origin); }

  // Scalars keep their text; typed reads parse it and throw ConfigError naming the origin.
  const std::string& text() const { return text_; }
  std::int64_t as_int() const;
  double as_double() const;
  bool as_bool() const;
  std::vector<std::string> as_string_list() const;

  // Maps keep insertion order, so printing the recipe follows the file.
  bool has(std::string_view key) const;
  const ConfigNode& at(std::string_view key) const;  // throws ConfigError if absent
  ConfigNode& operator[](std::string_view key);       // inserts a null node if absent
  void erase(std::string_view key);
  const std::vector<std::pair<std::string, ConfigNode>>& entries() const { return entries_; }
  std::vector<std::pair<std::string, ConfigNode>>& entries() { return entries_; }

  const std::vector<ConfigNode>& items() const { return items_; }
  void push_back(ConfigNode node) { items_.push_back(std::move(node)); }

  // Convenience reads of a child key of a map, for plugins whose keys were validated
  // (and defaults filled) by the core before they are created.
  std::int64_t get_int(std::string_view key) const { return at(key).as_int(); }
  double get_double(std::string_view key) const { return at(key).as_double(); }
  bool get_bool(std::string_view key) const { return at(key).as_bool(); }
  const std::string& get_string(std::string_view key) const { return at(key).text(); }

 private:
  Kind kind_ = Kind::null;
  Origin origin_;
  std::string text_;
  std::vector<std::pair<std::string, ConfigNode>> entries_;
  std::vector<ConfigNode> items_;
};

class ConfigError : public std::runtime_error {
 public:
  ConfigError(Origin origin, const std::string& message);
  const Origin& origin() const { return origin_; }

 private:
  Origin origin_;
};

enum class KeyType { integer, number, boolean, string, string_list };
const char* key_type_name(KeyType type);

// One accepted key. `default_value` is YAML scalar text; empty with required=false means
// the key is optional and has no default (absent stays absent).
struct KeySpec {
  std::string name;
  KeyType type = KeyType::string;
  std::string default_value;
  std::string doc;
  bool required = false;
  std::optional<double> min;  // inclusive bounds for integer/number
  std::optional<double> max;
  std::vector<std::string> choices;  // allowed values for strings
};

}  // namespace trainer
