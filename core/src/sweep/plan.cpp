#include "sweep/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "recipe/print.hpp"
#include "recipe/yaml_loader.hpp"

namespace trainer::sweep {
namespace {

// The same values regardless of the order they were written in.
bool same_values(const Assignments& a, const Assignments& b) {
  if (a.size() != b.size()) return false;
  return std::all_of(a.begin(), a.end(),
                     [&](const Assignment& x) { return std::find(b.begin(), b.end(), x) != b.end(); });
}

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string point_id(const Assignments& assignments) {
  std::string raw;
  for (const auto& a : assignments) {
    if (!raw.empty()) raw += ',';
    raw += a.key;
    raw += '=';
    raw += a.value;
  }
  std::string id;
  for (char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '.' || c == '_' || c == '-' || c == '+' || c == '=' || c == ',') {
      id += c;
    } else if (c == ':') {
      id += '-';  // {plugin: full, every: 2} reads as plugin-full,every-2
    } else if (c == ' ' || c == '{' || c == '}' || c == '[' || c == ']' || c == '"' || c == '\'') {
      // flow-YAML punctuation adds nothing to a folder name
    } else {
      id += '_';
    }
  }
  if (id.empty() || id[0] == '.' || id[0] == '-') id.insert(id.begin(), '_');
  // Folder names are limited (255 bytes on most filesystems); keep ids comfortably short.
  if (id.size() > 120) id = fmt::format("{}-{:016x}", id.substr(0, 100), fnv1a(raw));
  return id;
}

Plan make_plan(const SweepFile& sweep, std::vector<recipe::Diagnostic>& diagnostics) {
  Plan plan;
  if (!sweep.grid.empty()) {
    std::size_t total = 1;
    for (const auto& axis : sweep.grid) total *= axis.values.size();
    // Point n written in mixed radix, the last key as the lowest digit: the first key is the
    // outermost loop, as the file reads.
    for (std::size_t n = 0; n < total; ++n) {
      Point p;
      p.assignments.resize(sweep.grid.size());
      std::size_t rest = n;
      for (std::size_t k = sweep.grid.size(); k-- > 0;) {
        const auto& axis = sweep.grid[k];
        p.assignments[k] = {axis.key, axis.values[rest % axis.values.size()]};
        rest /= axis.values.size();
      }
      plan.points.push_back(std::move(p));
    }
  }
  for (const auto& e : sweep.points) {
    const auto same = std::find_if(plan.points.begin(), plan.points.end(),
                                   [&](const Point& p) { return same_values(p.assignments, e.assignments); });
    if (same != plan.points.end()) {
      diagnostics.push_back({e.origin, fmt::format("this point repeats point '{}'", point_id(same->assignments)),
                             "each point runs once; remove it or change a value"});
      continue;
    }
    plan.points.push_back(Point{"", e.assignments, false, false});
  }
  if (sweep.baseline) {
    const auto& b = sweep.baseline->assignments;
    auto it = std::find_if(plan.points.begin(), plan.points.end(),
                           [&](const Point& p) { return same_values(p.assignments, b); });
    if (it == plan.points.end()) {
      plan.points.insert(plan.points.begin(), Point{"", b, true, true});
      plan.baseline = 0;
    } else {
      it->is_baseline = true;
      plan.baseline = static_cast<std::size_t>(it - plan.points.begin());
    }
  }
  // Different values can sanitize to the same folder name ("a/b" and "a_b"): number repeats.
  std::vector<std::string> used;
  for (auto& p : plan.points) {
    std::string id = point_id(p.assignments);
    for (int n = 2; std::find(used.begin(), used.end(), id) != used.end(); ++n) {
      id = fmt::format("{}-{}", point_id(p.assignments), n);
    }
    used.push_back(id);
    p.id = id;
  }
  return plan;
}

std::vector<std::string> run_arguments(const SweepFile& sweep, const Point& point,
                                       const std::vector<std::string>& extra) {
  std::vector<std::string> args{sweep.base.string()};
  args.insert(args.end(), sweep.overrides.begin(), sweep.overrides.end());
  for (const auto& a : point.assignments) args.push_back(fmt::format("{}={}", a.key, a.value));
  args.insert(args.end(), extra.begin(), extra.end());
  // Quoted only when YAML would read the folder as something else: a shown command stays
  // readable ("a,b" is a plain scalar that yaml_scalar would quote anyway).
  const std::string dir = (sweep.output / point.id).generic_string();
  const auto plain = recipe::parse_yaml_value(dir, Origin{});
  const bool as_is = plain && plain->is_scalar() && plain->text() == dir;
  args.push_back(fmt::format("output.dir={}", as_is ? dir : recipe::yaml_scalar(dir)));
  return args;
}

bool selects(const Expectation& expectation, const Point& point) {
  for (const auto& [key, values] : expectation.where) {
    const auto it = std::find_if(point.assignments.begin(), point.assignments.end(),
                                 [&](const Assignment& a) { return a.key == key; });
    if (it == point.assignments.end()) return false;
    if (std::find(values.begin(), values.end(), it->value) == values.end()) return false;
  }
  return true;
}

}  // namespace trainer::sweep
