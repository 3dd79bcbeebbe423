// The sweep file: a base recipe, the variants to run (a grid and/or explicit points), an
// optional baseline, and the expectations every point must meet. Validated as strictly as a
// recipe: every problem is a recipe::Diagnostic at the file position that caused it.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "recipe/diagnostics.hpp"
#include "trainer/config.hpp"

namespace trainer::sweep {

// One override of a point: `key` is a dotted recipe key, `value` YAML text in flow style
// (what follows '=' in `trainer run ... key=value`).
struct Assignment {
  std::string key;
  std::string value;
  bool operator==(const Assignment&) const = default;
};
using Assignments = std::vector<Assignment>;

struct GridAxis {
  std::string key;
  std::vector<std::string> values;  // flow YAML text, in file order
  Origin origin;
};

// A point written under `points:` (or the `baseline:`), with where it was written.
struct ExplicitPoint {
  Assignments assignments;
  Origin origin;
};

// What one expectation checks. Comparisons (rtol, atol, equal, max_ratio, min_ratio) are
// against the baseline point; bounds (max, min) are absolute.
struct Expectation {
  std::string metric;
  std::optional<double> rtol;
  std::optional<double> atol;
  bool equal = false;
  std::optional<double> max;
  std::optional<double> min;
  std::optional<double> max_ratio;
  std::optional<double> min_ratio;
  // The points it applies to: each key must have one of the listed values (all points when
  // empty). Values are flow YAML text, compared with the point's own assignments.
  std::vector<std::pair<std::string, std::vector<std::string>>> where;
  Origin origin;

  bool needs_baseline() const { return rtol || atol || equal || max_ratio || min_ratio; }
  // A short column title: "step_losses rtol 1e-05", "activation_peak_bytes max_ratio 0.5 [recompute=full]".
  std::string label() const;
};

struct SweepFile {
  std::filesystem::path file;       // the sweep file, as given
  std::filesystem::path base;       // the recipe, resolved against the sweep file's folder
  std::vector<std::string> overrides;  // "key=value", applied to every point first
  std::vector<GridAxis> grid;
  std::vector<ExplicitPoint> points;
  std::optional<ExplicitPoint> baseline;
  int concurrency = 1;
  std::filesystem::path output;  // relative to the working directory, like a recipe's output.dir
  std::vector<Expectation> expect;
};

// Series metrics compare a run's per-step (or per-eval) values; every other metric name is a
// field of the run's final summary.
bool is_series_metric(const std::string& metric);

// Reads and validates a sweep file. Throws recipe::RecipeError holding every problem found.
SweepFile load_sweep_file(const std::filesystem::path& file);

// The same from already-parsed YAML (`root` as parse_yaml returns it); appends problems.
SweepFile parse_sweep(const ConfigNode& root, const std::filesystem::path& file,
                      std::vector<recipe::Diagnostic>& diagnostics);

// A node as flow-style YAML text that parse_yaml_value reads back to the same tree.
std::string flow_yaml(const ConfigNode& node);

}  // namespace trainer::sweep
