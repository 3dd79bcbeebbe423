#include "trainer/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace trainer {

std::string Origin::to_string() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

ConfigError::ConfigError(Origin origin, const std::string& message)
    : std::runtime_error(origin.to_string() + ": " + message), origin_(std::move(origin)) {}

const char* key_type_name(KeyType type) {
  switch (type) {
    case KeyType::integer: return "integer";
    case KeyType::number: return "number";
    case KeyType::boolean: return "boolean";
    case KeyType::string: return "string";
    case KeyType::string_list: return "list of strings";
  }
  return "?";
}

ConfigNode ConfigNode::scalar(std::string value, Origin origin) {
  ConfigNode n;
  n.kind_ = Kind::scalar;
  n.text_ = std::move(value);
  n.origin_ = std::move(origin);
  return n;
}

ConfigNode ConfigNode::map(Origin origin) {
  ConfigNode n;
  n.kind_ = Kind::map;
  n.origin_ = std::move(origin);
  return n;
}

ConfigNode ConfigNode::list(Origin origin) {
  ConfigNode n;
  n.kind_ = Kind::list;
  n.origin_ = std::move(origin);
  return n;
}

std::int64_t ConfigNode::as_int() const {
  if (kind_ != Kind::scalar) throw ConfigError(origin_, "expected an integer");
  std::int64_t v = 0;
  const char* b = text_.data();
  const char* e = b + text_.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec == std::errc() && p == e) return v;
  // Accept integral floats written as 1e6 or 2.0.
  char* end = nullptr;
  const double d = std::strtod(text_.c_str(), &end);
  if (end && *end == '\0' && !text_.empty() && std::isfinite(d) && d == std::floor(d) &&
      std::fabs(d) < 9.0e15) {
    return static_cast<std::int64_t>(d);
  }
  throw ConfigError(origin_, "expected an integer, got '" + text_ + "'");
}

double ConfigNode::as_double() const {
  if (kind_ != Kind::scalar) throw ConfigError(origin_, "expected a number");
  char* end = nullptr;
  const double d = std::strtod(text_.c_str(), &end);
  if (text_.empty() || !end || *end != '\0' || !std::isfinite(d)) {
    throw ConfigError(origin_, "expected a number, got '" + text_ + "'");
  }
  return d;
}

bool ConfigNode::as_bool() const {
  if (kind_ == Kind::scalar) {
    std::string t = text_;
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    if (t == "true" || t == "yes" || t == "on") return true;
    if (t == "false" || t == "no" || t == "off") return false;
  }
  throw ConfigError(origin_, "expected true or false, got '" + text_ + "'");
}

std::vector<std::string> ConfigNode::as_string_list() const {
  std::vector<std::string> out;
  if (kind_ == Kind::scalar) {
    out.push_back(text_);
    return out;
  }
  if (kind_ == Kind::null) return out;
  if (kind_ != Kind::list) throw ConfigError(origin_, "expected a list of strings");
  for (const auto& item : items_) {
    if (!item.is_scalar()) throw ConfigError(item.origin(), "expected a string");
    out.push_back(item.text());
  }
  return out;
}

bool ConfigNode::has(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return true;
  }
  return false;
}

const ConfigNode& ConfigNode::at(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return v;
  }
  throw ConfigError(origin_, "missing key '" + std::string(key) + "'");
}

ConfigNode& ConfigNode::operator[](std::string_view key) {
  if (kind_ == Kind::null) kind_ = Kind::map;
  for (auto& [k, v] : entries_) {
    if (k == key) return v;
  }
  entries_.emplace_back(std::string(key), ConfigNode{});
  return entries_.back().second;
}

void ConfigNode::erase(std::string_view key) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const auto& e) { return e.first == key; }),
                 entries_.end());
}

}  // namespace trainer
