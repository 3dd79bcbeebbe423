#include "data/dataset_json.hpp"

#include "util/text.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace trainer::data {
namespace {

std::string quote(std::string_view s) { return json_quote(s); }

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Recursive-descent reader over the restricted grammar described in the header.
class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  std::map<std::string, JsonValue> object() {
    std::map<std::string, JsonValue> out;
    expect('{');
    if (peek() == '}') {
      ++pos_;
    } else {
      while (true) {
        std::string key = string();
        expect(':');
        out[std::move(key)] = value(/*allow_array=*/true);
        if (peek() == ',') { ++pos_; continue; }
        expect('}');
        break;
      }
    }
    if (peek() != '\0') fail("trailing characters after the object");
    return out;
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw std::runtime_error(fmt::format("malformed JSON at byte {}: {}", pos_, what));
  }
  char peek() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' ||
                                s_[pos_] == '\t')) {
      ++pos_;
    }
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  void expect(char c) {
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++pos_;
  }
  std::uint32_t hex4() {
    if (pos_ + 4 > s_.size()) fail("short \\u escape");
    std::uint32_t v = 0;
    const auto [end, ec] = std::from_chars(s_.data() + pos_, s_.data() + pos_ + 4, v, 16);
    if (ec != std::errc() || end != s_.data() + pos_ + 4) fail("bad \\u escape");
    pos_ += 4;
    return v;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') { out += c; continue; }
      if (pos_ >= s_.size()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {  // surrogate pair
            pos_ += 2;
            const std::uint32_t lo = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail("unknown escape");
      }
    }
  }
  JsonValue value(bool allow_array) {
    JsonValue v;
    const char c = peek();
    if (c == '"') {
      v.kind = JsonValue::Kind::string;
      v.text = string();
    } else if (c == '[' && allow_array) {
      ++pos_;
      v.kind = JsonValue::Kind::array;
      if (peek() == ']') { ++pos_; return v; }
      while (true) {
        v.items.push_back(value(/*allow_array=*/false));
        if (peek() == ',') { ++pos_; continue; }
        expect(']');
        return v;
      }
    } else if (c == '{' || c == '[') {
      fail("nested objects/arrays are not supported in dataset.json");
    } else if (s_.substr(pos_, 4) == "true" || s_.substr(pos_, 5) == "false") {
      v.kind = JsonValue::Kind::boolean;
      v.text = s_[pos_] == 't' ? "true" : "false";
      pos_ += v.text.size();
    } else if (s_.substr(pos_, 4) == "null") {
      pos_ += 4;
    } else {
      const std::size_t start = pos_;
      while (pos_ < s_.size() && std::string_view("+-0123456789.eE").find(s_[pos_]) !=
                                     std::string_view::npos) {
        ++pos_;
      }
      if (pos_ == start) fail("expected a value");
      v.kind = JsonValue::Kind::number;
      v.text = std::string(s_.substr(start, pos_ - start));
      double check = 0;
      const auto [end, ec] = std::from_chars(v.text.data(), v.text.data() + v.text.size(), check);
      if (ec == std::errc::invalid_argument || end != v.text.data() + v.text.size()) {
        pos_ = start;
        fail("bad number");
      }
    }
    return v;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

void JsonObjectWriter::add_raw(std::string_view key, std::string raw) {
  entries_.emplace_back(quote(key), std::move(raw));
}

JsonObjectWriter& JsonObjectWriter::add_string(std::string_view key, std::string_view value) {
  add_raw(key, quote(value));
  return *this;
}

JsonObjectWriter& JsonObjectWriter::add_strings(std::string_view key,
                                                const std::vector<std::string>& values) {
  std::string raw = "[";
  for (std::size_t i = 0; i < values.size(); ++i) raw += (i ? ", " : "") + quote(values[i]);
  add_raw(key, raw + "]");
  return *this;
}

JsonObjectWriter& JsonObjectWriter::add_number(std::string_view key, double value) {
  if (!std::isfinite(value)) {
    throw std::invalid_argument(fmt::format("JSON cannot hold non-finite value for \"{}\"", key));
  }
  add_raw(key, fmt::format("{}", value));  // fmt prints the shortest round-trip form
  return *this;
}

JsonObjectWriter& JsonObjectWriter::add_integer(std::string_view key, std::int64_t value) {
  add_raw(key, fmt::format("{}", value));
  return *this;
}

JsonObjectWriter& JsonObjectWriter::add_unsigned(std::string_view key, std::uint64_t value) {
  add_raw(key, fmt::format("{}", value));
  return *this;
}

std::string JsonObjectWriter::str() const {
  std::string out = "{\n";
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    out += fmt::format("  {}: {}{}\n", entries_[i].first, entries_[i].second,
                       i + 1 < entries_.size() ? "," : "");
  }
  return out + "}\n";
}

double JsonValue::as_number() const {
  if (kind != Kind::number) throw std::runtime_error("JSON value is not a number");
  double v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);  // validated when parsed
  return v;
}

std::map<std::string, JsonValue> parse_flat_json(std::string_view text) {
  return Parser(text).object();
}

std::map<std::string, JsonValue> read_flat_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open", path.string()));
  std::ostringstream buf;
  buf << in.rdbuf();
  try {
    return parse_flat_json(buf.str());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{}: {}", path.string(), e.what()));
  }
}

}  // namespace trainer::data
