#include "sweep/metrics.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <fstream>
#include <limits>

namespace trainer::sweep {
namespace {

// A small strict JSON reader: enough for what a run log writes, and for anything valid it
// might write later (nested objects flatten to dotted keys; arrays keep their text).
class JsonReader {
 public:
  explicit JsonReader(const std::string& text) : s_(text) {}

  bool object(Record& out, const std::string& prefix) {
    skip();
    if (!eat('{')) return fail("expected '{'");
    skip();
    if (eat('}')) return true;
    while (true) {
      skip();
      std::string key;
      if (!string(key)) return false;
      skip();
      if (!eat(':')) return fail("expected ':'");
      skip();
      const std::string name = prefix.empty() ? key : prefix + "." + key;
      if (peek() == '{') {
        if (!object(out, name)) return false;
      } else {
        JsonValue v;
        if (!value(v)) return false;
        out[name] = std::move(v);
      }
      skip();
      if (eat('}')) return true;
      if (!eat(',')) return fail("expected ',' or '}'");
    }
  }

  bool at_end() {
    skip();
    return i_ == s_.size();
  }
  const std::string& error() const { return error_; }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool fail(const char* what) {
    if (error_.empty()) error_ = fmt::format("{} at column {}", what, i_ + 1);
    return false;
  }

  bool value(JsonValue& v) {
    const char c = peek();
    if (c == '"') {
      v.kind = JsonValue::Kind::string;
      return string(v.text);
    }
    if (c == '[' || c == '{') {
      const std::size_t start = i_;
      if (!skip_nested()) return false;
      v.kind = JsonValue::Kind::other;
      v.text = s_.substr(start, i_ - start);
      return true;
    }
    for (const auto& [word, kind, number] : {std::tuple{"true", JsonValue::Kind::boolean, 1.0},
                                             std::tuple{"false", JsonValue::Kind::boolean, 0.0},
                                             std::tuple{"null", JsonValue::Kind::null, 0.0}}) {
      if (s_.compare(i_, std::strlen(word), word) == 0) {
        i_ += std::strlen(word);
        v.kind = kind;
        v.number = number;
        v.text = word;
        return true;
      }
    }
    const char* begin = s_.c_str() + i_;
    char* end = nullptr;
    const double d = std::strtod(begin, &end);
    if (end == begin || !(c == '-' || (c >= '0' && c <= '9'))) return fail("expected a value");
    v.kind = JsonValue::Kind::number;
    v.number = d;
    v.text.assign(begin, static_cast<std::size_t>(end - begin));
    i_ += static_cast<std::size_t>(end - begin);
    return true;
  }

  // Past one array or object, strings included, without keeping it.
  bool skip_nested() {
    int depth = 0;
    do {
      const char c = peek();
      if (c == '\0') return fail("unterminated array or object");
      if (c == '"') {
        std::string ignored;
        if (!string(ignored)) return false;
        continue;
      }
      if (c == '[' || c == '{') ++depth;
      if (c == ']' || c == '}') --depth;
      ++i_;
    } while (depth > 0);
    return true;
  }

  bool string(std::string& out) {
    if (!eat('"')) return fail("expected a string");
    while (true) {
      if (i_ >= s_.size()) return fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) return fail("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          if (i_ + 4 > s_.size()) return fail("bad \\u escape");
          const unsigned long cp = std::strtoul(s_.substr(i_, 4).c_str(), nullptr, 16);
          i_ += 4;
          // UTF-8 of one BMP code point (surrogate pairs stay as two; log text never has them).
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default: out += e;  // \" \\ \/
      }
    }
  }

  const std::string& s_;
  std::size_t i_ = 0;
  std::string error_;
};

double as_number(const JsonValue& v) {
  return v.kind == JsonValue::Kind::number ? v.number : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

std::optional<Record> parse_json_line(const std::string& line, std::string* error) {
  JsonReader reader(line);
  Record r;
  if (!reader.object(r, "")) {
    if (error) *error = reader.error();
    return std::nullopt;
  }
  if (!reader.at_end()) {
    if (error) *error = "text after the object";
    return std::nullopt;
  }
  return r;
}

std::optional<Series> RunMetrics::series(const std::string& metric) const {
  const std::vector<Record>* records = &steps;
  std::string field;
  if (metric == "step_losses") {
    field = "loss";
  } else if (metric == "val_losses") {
    records = &evals;
    field = "val_loss";
  } else if (metric.starts_with("step.")) {
    field = metric.substr(5);
  } else if (metric.starts_with("eval.")) {
    records = &evals;
    field = metric.substr(5);
  } else {
    return std::nullopt;
  }
  Series s;
  bool any = false;
  for (const auto& r : *records) {
    const auto it = r.find(field);
    any = any || it != r.end();
    const auto step = r.find("step");
    s.steps.push_back(step != r.end() ? static_cast<std::int64_t>(step->second.number) : 0);
    s.values.push_back(it != r.end() ? as_number(it->second) : std::numeric_limits<double>::quiet_NaN());
  }
  if (!any) return std::nullopt;
  return s;
}

std::optional<JsonValue> RunMetrics::summary_field(const std::string& name) const {
  if (!summary) return std::nullopt;
  const auto it = summary->find(name);
  if (it == summary->end()) return std::nullopt;
  return it->second;
}

std::optional<double> RunMetrics::summary_number(const std::string& name) const {
  const auto v = summary_field(name);
  if (!v || v->kind != JsonValue::Kind::number) return std::nullopt;
  return v->number;
}

RunMetrics read_metrics(const std::filesystem::path& file) {
  RunMetrics m;
  std::ifstream in(file);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string error;
    auto record = parse_json_line(line, &error);
    if (!record) {
      m.problems.push_back(fmt::format("line {}: {}", number, error));
      continue;
    }
    const auto event = record->find("event");
    const std::string kind = event != record->end() ? event->second.text : "";
    if (kind == "step") m.steps.push_back(std::move(*record));
    else if (kind == "eval") m.evals.push_back(std::move(*record));
    else if (kind == "summary") m.summary = std::move(*record);
  }
  return m;
}

}  // namespace trainer::sweep
