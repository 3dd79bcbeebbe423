// A sweep's results: each point's run, metrics and expectation outcomes, judged and shown as
// a Markdown table (stdout, results.md) and CSV (results.csv, for spreadsheets and scripts).
#pragma once
#include <string>
#include <vector>

#include "sweep/expectations.hpp"
#include "sweep/metrics.hpp"
#include "sweep/plan.hpp"
#include "sweep/runner.hpp"
#include "sweep/sweep_file.hpp"

namespace trainer::sweep {

struct PointResult {
  Point point;
  JobResult run;
  RunMetrics metrics;
  std::vector<std::string> log_tail;  // the end of log.txt, shown when the run failed
  std::vector<Outcome> outcomes;      // one per expectation, filled by evaluate()
  std::vector<std::string> failed_checks;  // "#2 final_val_loss max 0.001", filled by evaluate()

  bool ran() const;            // exited 0 and wrote a summary
  std::string status() const;  // "ok", "FAIL: final_val_loss max 0.001", "ERROR exit 2"
  bool ok() const { return status() == "ok"; }
};

struct SweepResults {
  std::vector<Expectation> expectations;
  std::vector<PointResult> points;  // in plan order

  bool all_ok() const;
};

// Fills every point's outcomes: expectations `where` excludes and points that did not run
// are not applicable; comparisons use the plan's baseline.
void evaluate(SweepResults& results);

std::string markdown(const SweepResults& results);
std::string csv(const SweepResults& results);

}  // namespace trainer::sweep
