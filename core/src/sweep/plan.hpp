// The points of a sweep: the grid's cartesian product (first key slowest, in file order), then
// the explicit points, each with a readable, filesystem-safe id and the overrides it runs with.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "recipe/diagnostics.hpp"
#include "sweep/sweep_file.hpp"

namespace trainer::sweep {

struct Point {
  std::string id;           // "recompute=full,train.micro_batch=2"; also its folder under output
  Assignments assignments;  // the point's own values (grid, points or baseline)
  bool is_baseline = false;
  // The baseline named values no grid or explicit point has, so it runs as a point of its own.
  bool added_for_baseline = false;
};

struct Plan {
  std::vector<Point> points;
  std::optional<std::size_t> baseline;  // index into points
};

// Points in run order. A point repeating another's values is a diagnostic at the explicit
// point that repeats it. A baseline that matches no point is added first.
Plan make_plan(const SweepFile& sweep, std::vector<recipe::Diagnostic>& diagnostics);

// "key=value,key=value" made safe as one folder name: no '/', spaces or YAML brackets, at
// most ~120 characters (longer ids end in a hash of the whole).
std::string point_id(const Assignments& assignments);

// The arguments after `trainer run`: the base recipe, the sweep's overrides, the point's,
// `extra` (from the command line), then output.dir=<output>/<id>.
std::vector<std::string> run_arguments(const SweepFile& sweep, const Point& point,
                                       const std::vector<std::string>& extra);

// Whether a point is one an expectation's `where` selects.
bool selects(const Expectation& expectation, const Point& point);

}  // namespace trainer::sweep
