// Checking one expectation on one point's metrics, with the measured value in words so a
// failed CI run says by how much ("max rel diff 3.2e-06 ≤ 1e-05").
#pragma once
#include <string>

#include "sweep/metrics.hpp"
#include "sweep/sweep_file.hpp"

namespace trainer::sweep {

struct Outcome {
  enum class Status {
    pass,
    fail,
    not_applicable,  // `where` does not select the point, or the point did not run
    baseline,        // the baseline itself, for a check that compares against it
  };
  Status status = Status::not_applicable;
  std::string detail;

  // "✓ detail", "✗ detail", "–" (not applicable), "baseline".
  std::string cell() const;
};

// `baseline` is null when the baseline point did not produce metrics; checks that need it
// then fail. `is_baseline` marks the baseline point itself: comparisons skip it (a ratio of
// 1 against itself says nothing), absolute bounds still apply.
Outcome check(const Expectation& expectation, const RunMetrics& point, const RunMetrics* baseline,
              bool is_baseline);

// A value as shown in details: integers in full (byte counts), others to 6 digits.
std::string format_value(double v);

}  // namespace trainer::sweep
