#include "sweep/sweep_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "recipe/overrides.hpp"
#include "recipe/print.hpp"
#include "recipe/suggest.hpp"
#include "recipe/yaml_loader.hpp"

namespace trainer::sweep {

using recipe::Diagnostic;

namespace {

const std::vector<std::string> kTopKeys{"base",        "overrides", "grid",   "points", "baseline",
                                        "concurrency", "output",    "expect"};
const std::vector<std::string> kExpectKeys{"metric", "rtol", "atol",      "equal",    "max",
                                           "min",    "where", "max_ratio", "min_ratio"};

std::string describe(const ConfigNode& node) {
  switch (node.kind()) {
    case ConfigNode::Kind::scalar: return fmt::format("'{}'", node.text());
    case ConfigNode::Kind::list: return "a list";
    case ConfigNode::Kind::map: return "a map";
    case ConfigNode::Kind::null: break;
  }
  return "nothing";
}

std::string short_number(double v) { return fmt::format("{:g}", v); }

class Parser {
 public:
  Parser(std::filesystem::path file, std::vector<Diagnostic>& diagnostics)
      : file_(std::move(file)), diags_(diagnostics) {}

  SweepFile parse(const ConfigNode& root) {
    SweepFile s;
    s.file = file_;
    if (!root.is_map()) {
      report(root.origin(), fmt::format("a sweep file must be a map (base, grid, points, expect, ...), found {}",
                                        describe(root)));
      return s;
    }
    for (const auto& [key, value] : root.entries()) {
      if (std::find(kTopKeys.begin(), kTopKeys.end(), key) == kTopKeys.end()) {
        report(value.origin(), fmt::format("unknown key '{}' in the sweep file", key),
               recipe::suggestion_hint(key, kTopKeys));
      }
    }
    parse_base(root, s);
    if (root.has("overrides")) parse_overrides(root.at("overrides"), s);
    if (root.has("grid")) parse_grid(root.at("grid"), s);
    if (root.has("points")) parse_points(root.at("points"), s);
    if (root.has("baseline")) {
      ExplicitPoint p;
      if (assignments(root.at("baseline"), "baseline", p.assignments)) {
        p.origin = root.at("baseline").origin();
        s.baseline = std::move(p);
      }
    }
    if (root.has("concurrency")) {
      const ConfigNode& c = root.at("concurrency");
      if (!c.is_scalar() || !is_integer(c.text()) || std::stoll(c.text()) < 1 || std::stoll(c.text()) > 1024) {
        report(c.origin(), fmt::format("'concurrency' must be an integer between 1 and 1024, found {}", describe(c)));
      } else {
        s.concurrency = static_cast<int>(std::stoll(c.text()));
      }
    }
    s.output = std::filesystem::path("runs") / fmt::format("sweep-{}", file_.stem().string());
    if (root.has("output")) {
      const ConfigNode& o = root.at("output");
      if (!o.is_scalar() || o.text().empty()) {
        report(o.origin(), fmt::format("'output' must be a folder path, found {}", describe(o)));
      } else {
        s.output = o.text();
      }
    }
    if (root.has("expect")) parse_expect(root.at("expect"), s);
    if (s.grid.empty() && s.points.empty() && !root.has("grid") && !root.has("points")) {
      report(root.origin(), "the sweep has no points: give a 'grid', a list of 'points', or both");
    }
    for (const auto& e : s.expect) {
      if (e.needs_baseline() && !s.baseline) {
        report(e.origin, fmt::format("expectation '{}' compares against the baseline, but the sweep has none",
                                     e.label()),
               "add `baseline: {key: value, ...}` naming the point to compare against");
      }
    }
    return s;
  }

 private:
  void report(Origin origin, std::string message, std::string hint = "") {
    diags_.push_back({std::move(origin), std::move(message), std::move(hint)});
  }

  static bool is_integer(const std::string& t) {
    if (t.empty() || t.size() > 12) return false;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(t[i])) && !(i == 0 && (t[i] == '-' || t[i] == '+'))) return false;
    }
    return std::isdigit(static_cast<unsigned char>(t.back()));
  }

  // A dotted recipe key as written on the command line: "train.micro_batch".
  bool check_key(const std::string& key, const Origin& origin, const std::string& where) {
    bool ok = !key.empty();
    std::size_t start = 0;
    while (ok) {
      const std::size_t dot = key.find('.', start);
      const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      ok = !part.empty() && part.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
                                std::string::npos;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (!ok) {
      report(origin, fmt::format("'{}' in {} is not a recipe key", key, where),
             "write dotted recipe keys, e.g. train.micro_batch");
      return false;
    }
    if (key == "output.dir" || key == "output") {
      report(origin, fmt::format("'{}' in {} is set by the sweep: each point runs in <output>/<point id>", key, where),
             "set the sweep's own `output:` instead");
      return false;
    }
    return true;
  }

  void parse_base(const ConfigNode& root, SweepFile& s) {
    if (!root.has("base")) {
      report(root.origin(), "missing required key 'base'", "base: path/to/recipe.yaml (relative to the sweep file)");
      return;
    }
    const ConfigNode& b = root.at("base");
    if (!b.is_scalar() || b.text().empty()) {
      report(b.origin(), fmt::format("'base' must be a recipe file path, found {}", describe(b)));
      return;
    }
    std::filesystem::path p = b.text();
    if (p.is_relative()) p = file_.parent_path() / p;
    s.base = p.lexically_normal();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(s.base, ec)) {
      report(b.origin(), fmt::format("base recipe '{}' does not exist", s.base.generic_string()),
             "the path is relative to the sweep file's folder");
    }
  }

  void parse_overrides(const ConfigNode& node, SweepFile& s) {
    if (!node.is_list()) {
      report(node.origin(), fmt::format("'overrides' must be a list of key=value strings, found {}", describe(node)),
             "overrides: [train.steps=5, recompute=full]");
      return;
    }
    for (const auto& item : node.items()) {
      if (!item.is_scalar()) {
        report(item.origin(), fmt::format("an override must be a key=value string, found {}", describe(item)));
        continue;
      }
      std::vector<Diagnostic> found;
      const auto parsed = recipe::parse_override(item.text(), found);
      for (auto& d : found) report(item.origin(), d.message, d.hint);
      if (!parsed) continue;
      const std::string key = item.text().substr(0, item.text().find('='));
      if (check_key(key, item.origin(), "'overrides'")) s.overrides.push_back(item.text());
    }
  }

  void parse_grid(const ConfigNode& node, SweepFile& s) {
    if (!node.is_map() || node.entries().empty()) {
      report(node.origin(), fmt::format("'grid' must be a map of recipe keys to lists of values, found {}",
                                        node.is_map() ? "an empty map" : describe(node)),
             "grid: {recompute: [none, full], train.micro_batch: [2, 4]}");
      return;
    }
    for (const auto& [key, values] : node.entries()) {
      if (!check_key(key, values.origin(), "'grid'")) continue;
      if (!values.is_list() || values.items().empty()) {
        report(values.origin(), fmt::format("grid axis '{}' must be a non-empty list of values, found {}", key,
                                            values.is_list() ? "an empty list" : describe(values)),
               fmt::format("{}: [{}]", key, values.is_scalar() ? values.text() : "a, b"));
        continue;
      }
      GridAxis axis{key, {}, values.origin()};
      for (const auto& v : values.items()) {
        const std::string text = flow_yaml(v);
        if (std::find(axis.values.begin(), axis.values.end(), text) != axis.values.end()) {
          report(v.origin(), fmt::format("grid axis '{}' lists the value {} twice", key, text));
          continue;
        }
        axis.values.push_back(text);
      }
      s.grid.push_back(std::move(axis));
    }
  }

  bool assignments(const ConfigNode& node, const std::string& where, Assignments& out) {
    if (!node.is_map() || node.entries().empty()) {
      report(node.origin(), fmt::format("{} must be a map of recipe keys to values, found {}", where,
                                        node.is_map() ? "an empty map" : describe(node)),
             "{recompute: full, train.micro_batch: 4}");
      return false;
    }
    bool ok = true;
    for (const auto& [key, value] : node.entries()) {
      if (!check_key(key, value.origin(), where)) {
        ok = false;
        continue;
      }
      out.push_back({key, flow_yaml(value)});
    }
    return ok;
  }

  void parse_points(const ConfigNode& node, SweepFile& s) {
    if (!node.is_list()) {
      report(node.origin(), fmt::format("'points' must be a list of maps of overrides, found {}", describe(node)),
             "points: [{recompute: full, model.n_layer: 3}]");
      return;
    }
    for (std::size_t i = 0; i < node.items().size(); ++i) {
      ExplicitPoint p;
      p.origin = node.items()[i].origin();
      if (assignments(node.items()[i], fmt::format("points[{}]", i), p.assignments)) s.points.push_back(std::move(p));
    }
  }

  std::optional<double> number(const ConfigNode& e, const char* key, std::size_t index, bool positive, bool& ok) {
    if (!e.has(key)) return std::nullopt;
    const ConfigNode& v = e.at(key);
    char* end = nullptr;
    const double d = v.is_scalar() ? std::strtod(v.text().c_str(), &end) : 0.0;
    if (!v.is_scalar() || v.text().empty() || *end != '\0' || !std::isfinite(d) || (positive && d < 0)) {
      report(v.origin(), fmt::format("'expect[{}].{}' must be a {}number, found {}", index, key,
                                     positive ? "non-negative " : "", describe(v)));
      ok = false;
      return std::nullopt;
    }
    return d;
  }

  void parse_expect(const ConfigNode& node, SweepFile& s) {
    if (!node.is_list()) {
      report(node.origin(), fmt::format("'expect' must be a list of checks, found {}", describe(node)),
             "expect: [{metric: step_losses, rtol: 1.0e-5}]");
      return;
    }
    for (std::size_t i = 0; i < node.items().size(); ++i) {
      const ConfigNode& e = node.items()[i];
      if (!e.is_map()) {
        report(e.origin(), fmt::format("'expect[{}]' must be a map such as {{metric: final_loss, max: 3.0}}, found {}",
                                       i, describe(e)));
        continue;
      }
      Expectation x;
      x.origin = e.origin();
      bool ok = true;
      for (const auto& [key, value] : e.entries()) {
        if (std::find(kExpectKeys.begin(), kExpectKeys.end(), key) == kExpectKeys.end()) {
          report(value.origin(), fmt::format("unknown key '{}' in 'expect[{}]'", key, i),
                 recipe::suggestion_hint(key, kExpectKeys));
          ok = false;
        }
      }
      if (!e.has("metric") || !e.at("metric").is_scalar() || e.at("metric").text().empty()) {
        report(e.has("metric") ? e.at("metric").origin() : e.origin(),
               fmt::format("'expect[{}]' needs a 'metric' name", i),
               "a summary field (final_loss, activation_peak_bytes, ...), step_losses or val_losses");
        continue;
      }
      x.metric = e.at("metric").text();
      if (!x.origin.line) x.origin = e.at("metric").origin();
      x.rtol = number(e, "rtol", i, true, ok);
      x.atol = number(e, "atol", i, true, ok);
      x.max = number(e, "max", i, false, ok);
      x.min = number(e, "min", i, false, ok);
      x.max_ratio = number(e, "max_ratio", i, true, ok);
      x.min_ratio = number(e, "min_ratio", i, true, ok);
      if (e.has("equal")) {
        const ConfigNode& v = e.at("equal");
        const std::string t = v.is_scalar() ? v.text() : "";
        if (t != "true" && t != "false") {
          report(v.origin(), fmt::format("'expect[{}].equal' must be true or false, found {}", i, describe(v)));
          ok = false;
        }
        x.equal = t == "true";
      }
      if (e.has("where")) ok = parse_where(e.at("where"), i, x) && ok;
      const bool has_check = x.rtol || x.atol || x.equal || x.max || x.min || x.max_ratio || x.min_ratio;
      if (!has_check) {
        if (ok) {
          report(x.origin, fmt::format("'expect[{}]' ({}) checks nothing", i, x.metric),
                 "give one of rtol, atol, equal: true, max, min, max_ratio, min_ratio");
        }
        continue;
      }
      if (is_series_metric(x.metric) && (x.max || x.min || x.max_ratio || x.min_ratio)) {
        report(x.origin, fmt::format("'{}' is a series (one value per step): compare it with rtol, atol or equal",
                                     x.metric));
        continue;
      }
      if (x.equal && (x.rtol || x.atol)) {
        report(x.origin, fmt::format("'expect[{}]' gives both equal and a tolerance; keep one", i));
        continue;
      }
      if (ok) s.expect.push_back(std::move(x));
    }
  }

  bool parse_where(const ConfigNode& w, std::size_t i, Expectation& x) {
    if (!w.is_map() || w.entries().empty()) {
      report(w.origin(), fmt::format("'expect[{}].where' must be a map of recipe keys to values, found {}", i,
                                     describe(w)),
             "where: {recompute: full}");
      return false;
    }
    bool ok = true;
    for (const auto& [key, value] : w.entries()) {
      if (!check_key(key, value.origin(), fmt::format("'expect[{}].where'", i))) {
        ok = false;
        continue;
      }
      std::vector<std::string> values;
      // A list means "any of these"; a point's own value is never a list of alternatives.
      if (value.is_list()) {
        for (const auto& v : value.items()) values.push_back(flow_yaml(v));
      } else {
        values.push_back(flow_yaml(value));
      }
      x.where.emplace_back(key, std::move(values));
    }
    return ok;
  }

  std::filesystem::path file_;
  std::vector<Diagnostic>& diags_;
};

}  // namespace

std::string Expectation::label() const {
  std::string out = metric;
  if (rtol) out += fmt::format(" rtol {}", short_number(*rtol));
  if (atol) out += fmt::format(" atol {}", short_number(*atol));
  if (equal) out += " equal";
  if (max) out += fmt::format(" max {}", short_number(*max));
  if (min) out += fmt::format(" min {}", short_number(*min));
  if (max_ratio) out += fmt::format(" max_ratio {}", short_number(*max_ratio));
  if (min_ratio) out += fmt::format(" min_ratio {}", short_number(*min_ratio));
  if (!where.empty()) {
    std::vector<std::string> parts;
    for (const auto& [key, values] : where) {
      parts.push_back(values.size() == 1 ? fmt::format("{}={}", key, values[0])
                                         : fmt::format("{}=[{}]", key, recipe::join(values, "|")));
    }
    out += fmt::format(" [{}]", recipe::join(parts, ","));
  }
  return out;
}

bool is_series_metric(const std::string& metric) {
  return metric == "step_losses" || metric == "val_losses" || metric.starts_with("step.") ||
         metric.starts_with("eval.");
}

std::string flow_yaml(const ConfigNode& node) {
  switch (node.kind()) {
    case ConfigNode::Kind::scalar: return recipe::yaml_scalar(node.text());
    case ConfigNode::Kind::null: return "null";
    case ConfigNode::Kind::list: {
      std::vector<std::string> items;
      for (const auto& item : node.items()) items.push_back(flow_yaml(item));
      std::string out = "[";
      out += recipe::join(items);
      out += "]";
      return out;
    }
    case ConfigNode::Kind::map: {
      std::vector<std::string> items;
      for (const auto& [key, value] : node.entries()) {
        items.push_back(fmt::format("{}: {}", recipe::yaml_scalar(key), flow_yaml(value)));
      }
      std::string out = "{";
      out += recipe::join(items);
      out += "}";
      return out;
    }
  }
  return "null";
}

SweepFile parse_sweep(const ConfigNode& root, const std::filesystem::path& file,
                      std::vector<Diagnostic>& diagnostics) {
  return Parser(file, diagnostics).parse(root);
}

SweepFile load_sweep_file(const std::filesystem::path& file) {
  std::vector<Diagnostic> diagnostics;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    diagnostics.push_back({Origin{file.generic_string(), 0, 0},
                           fmt::format("sweep file '{}' does not exist", file.generic_string()), ""});
    throw recipe::RecipeError(std::move(diagnostics));
  }
  const auto root = recipe::read_yaml_file(file, Origin{file.generic_string(), 0, 0}, diagnostics);
  SweepFile s;
  if (root) s = parse_sweep(*root, file, diagnostics);
  if (!diagnostics.empty()) throw recipe::RecipeError(std::move(diagnostics));
  return s;
}

}  // namespace trainer::sweep
