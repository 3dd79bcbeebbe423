// dataset.json: the small manifest written next to train.bin/val.bin. It is a flat JSON
// object (strings, numbers, booleans, and arrays of those), so a hand-written writer and
// reader suffice and the core takes no JSON dependency.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace trainer::data {

// Builds the object text key by key, in insertion order (stable, diff-friendly files).
class JsonObjectWriter {
 public:
  JsonObjectWriter& add_string(std::string_view key, std::string_view value);
  JsonObjectWriter& add_strings(std::string_view key, const std::vector<std::string>& values);
  // Shortest text that reads back to the same double; non-finite values are rejected
  // because JSON cannot represent them.
  JsonObjectWriter& add_number(std::string_view key, double value);
  JsonObjectWriter& add_integer(std::string_view key, std::int64_t value);
  JsonObjectWriter& add_unsigned(std::string_view key, std::uint64_t value);
  std::string str() const;  // pretty-printed, one key per line, trailing newline

 private:
  void add_raw(std::string_view key, std::string raw);
  std::vector<std::pair<std::string, std::string>> entries_;
};

struct JsonValue {
  enum class Kind { string, number, boolean, null, array };
  Kind kind = Kind::null;
  // string: the decoded text; number: the literal as written (so 64-bit integers are not
  // squeezed through a double); boolean: "true"/"false".
  std::string text;
  std::vector<JsonValue> items;  // array elements (scalars only)

  double as_number() const;  // throws std::runtime_error unless kind == number
};

// Parses a flat object; throws std::runtime_error with the byte offset on malformed input
// or on nesting deeper than an array of scalars.
std::map<std::string, JsonValue> parse_flat_json(std::string_view text);

// Reads and parses a file; errors name the file.
std::map<std::string, JsonValue> read_flat_json(const std::filesystem::path& path);

}  // namespace trainer::data
