#include "sweep/expectations.hpp"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "recipe/suggest.hpp"

namespace trainer::sweep {
namespace {

using Status = Outcome::Status;

Outcome pass(std::string detail) { return {Status::pass, std::move(detail)}; }
Outcome fail(std::string detail) { return {Status::fail, std::move(detail)}; }

std::string diff(double v) { return fmt::format("{:.2g}", v); }
std::string bound(double v) { return fmt::format("{:g}", v); }

// |a - b| relative to the baseline's magnitude; exact zeros compare as 0 or infinitely far.
double rel_diff(double a, double b) {
  const double d = std::fabs(a - b);
  if (d == 0) return 0;
  return b == 0 ? INFINITY : d / std::fabs(b);
}

Outcome compare_series(const Expectation& x, const Series& got, const Series& want) {
  if (got.values.size() != want.values.size()) {
    return fail(fmt::format("{} values vs the baseline's {}", got.values.size(), want.values.size()));
  }
  const double rtol = x.rtol.value_or(0);
  const double atol = x.atol.value_or(0);
  double max_rel = 0;
  double max_abs = 0;
  std::size_t worst = 0;
  double worst_excess = -1;  // diff beyond what is allowed, relative to the allowance
  for (std::size_t i = 0; i < got.values.size(); ++i) {
    const double a = got.values[i];
    const double b = want.values[i];
    if (!std::isfinite(a) || !std::isfinite(b)) {
      if (x.equal && std::isnan(a) && std::isnan(b)) continue;
      return fail(fmt::format("non-finite value at step {} ({} vs the baseline's {})", got.steps[i], a, b));
    }
    if (x.equal) {
      if (a != b) {
        return fail(fmt::format("differs at step {}: {} vs the baseline's {}", got.steps[i], format_value(a),
                                format_value(b)));
      }
      continue;
    }
    const double d = std::fabs(a - b);
    max_abs = std::max(max_abs, d);
    max_rel = std::max(max_rel, rel_diff(a, b));
    const double allowed = atol + rtol * std::fabs(b);
    const double excess = allowed > 0 ? d / allowed : (d > 0 ? INFINITY : 0);
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  if (x.equal) return pass(fmt::format("equal over {} values", got.values.size()));
  const bool ok = worst_excess <= 1;
  const std::string where = ok || got.values.empty() ? "" : fmt::format(" (worst at step {})", got.steps[worst]);
  if (x.rtol && !x.atol) {
    return {ok ? Status::pass : Status::fail,
            fmt::format("max rel diff {} {} {}{}", diff(max_rel), ok ? "≤" : ">", bound(rtol), where)};
  }
  if (x.atol && !x.rtol) {
    return {ok ? Status::pass : Status::fail,
            fmt::format("max abs diff {} {} {}{}", diff(max_abs), ok ? "≤" : ">", bound(atol), where)};
  }
  return {ok ? Status::pass : Status::fail,
          fmt::format("max abs diff {}, rel diff {}: {} atol {} + rtol {}{}", diff(max_abs), diff(max_rel),
                      ok ? "within" : "beyond", bound(atol), bound(rtol), where)};
}

Outcome missing(const RunMetrics& m, const std::string& metric, bool of_baseline) {
  std::string out = of_baseline ? "missing in the baseline" : "missing";
  if (!is_series_metric(metric)) {
    if (!m.summary) {
      out += " (no summary line: the run did not finish)";
    } else {
      // Summary fields are open-ended, so a misspelled name is only caught here.
      std::vector<std::string> names;
      for (const auto& [name, value] : *m.summary) names.push_back(name);
      if (auto near = recipe::closest_match(metric, names)) out += fmt::format(" (did you mean '{}'?)", *near);
    }
  }
  return fail(out);
}

Outcome check_scalar(const Expectation& x, const RunMetrics& point, const RunMetrics* base, bool is_baseline) {
  const auto got = point.summary_field(x.metric);
  if (!got) return missing(point, x.metric, false);
  std::vector<std::string> parts;
  bool ok = true;
  auto add = [&](bool holds, std::string part) {
    ok = ok && holds;
    parts.push_back(std::move(part));
  };
  const bool numeric = got->kind == JsonValue::Kind::number;
  const double a = got->number;
  if ((x.max || x.min) && !numeric) return fail(fmt::format("{} is not a number", got->text));
  if (x.max) add(a <= *x.max, fmt::format("{} {} {}", format_value(a), a <= *x.max ? "≤" : ">", bound(*x.max)));
  if (x.min) add(a >= *x.min, fmt::format("{} {} {}", format_value(a), a >= *x.min ? "≥" : "<", bound(*x.min)));
  if (x.needs_baseline() && !is_baseline) {
    if (!base) return fail("the baseline has no metrics to compare with");
    const auto want = base->summary_field(x.metric);
    if (!want) return missing(*base, x.metric, true);
    const double b = want->number;
    if (x.equal) {
      const bool same = got->text == want->text || (numeric && want->kind == JsonValue::Kind::number && a == b);
      add(same, fmt::format("{} {} {}", got->text, same ? "=" : "≠", want->text));
    }
    if (x.rtol || x.atol || x.max_ratio || x.min_ratio) {
      if (!numeric || want->kind != JsonValue::Kind::number) {
        return fail(fmt::format("not numbers: {} vs the baseline's {}", got->text, want->text));
      }
    }
    if (x.rtol || x.atol) {
      const double d = std::fabs(a - b);
      const bool holds = d <= x.atol.value_or(0) + x.rtol.value_or(0) * std::fabs(b);
      if (x.rtol && !x.atol) {
        add(holds, fmt::format("rel diff {} {} {}", diff(rel_diff(a, b)), holds ? "≤" : ">", bound(*x.rtol)));
      } else {
        add(holds, fmt::format("abs diff {} {} {}", diff(d), holds ? "≤" : ">",
                               x.rtol ? fmt::format("{} + {}×|baseline|", bound(*x.atol), bound(*x.rtol))
                                      : bound(*x.atol)));
      }
    }
    if (x.max_ratio || x.min_ratio) {
      if (b == 0) return fail("the baseline's value is 0; no ratio");
      const double r = a / b;
      if (x.max_ratio) {
        add(r <= *x.max_ratio, fmt::format("{:.3g}× baseline {} {}", r, r <= *x.max_ratio ? "≤" : ">", bound(*x.max_ratio)));
      }
      if (x.min_ratio) {
        add(r >= *x.min_ratio, fmt::format("{:.3g}× baseline {} {}", r, r >= *x.min_ratio ? "≥" : "<", bound(*x.min_ratio)));
      }
    }
  }
  if (parts.empty()) return {Status::baseline, "baseline"};
  return {ok ? Status::pass : Status::fail, recipe::join(parts, "; ")};
}

}  // namespace

std::string format_value(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{:.6g}", v);
}

std::string Outcome::cell() const {
  switch (status) {
    case Status::pass: return fmt::format("✓ {}", detail);
    case Status::fail: return fmt::format("✗ {}", detail);
    case Status::baseline: return "baseline";
    case Status::not_applicable: break;
  }
  return "–";
}

Outcome check(const Expectation& x, const RunMetrics& point, const RunMetrics* baseline, bool is_baseline) {
  if (!is_series_metric(x.metric)) return check_scalar(x, point, baseline, is_baseline);
  // Series are only ever compared against the baseline (the parser allows nothing else).
  if (is_baseline) return {Status::baseline, "baseline"};
  const auto got = point.series(x.metric);
  if (!got) return missing(point, x.metric, false);
  if (!baseline) return fail("the baseline has no metrics to compare with");
  const auto want = baseline->series(x.metric);
  if (!want) return missing(*baseline, x.metric, true);
  return compare_series(x, *got, *want);
}

}  // namespace trainer::sweep
