#include "sweep/report.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "engine/run_log.hpp"
#include "recipe/suggest.hpp"

namespace trainer::sweep {
namespace {

using Status = Outcome::Status;

// A summary field as the table shows it: `show` formats numbers, "–" when absent.
template <class Show>
std::string field(const PointResult& p, const char* name, Show show) {
  const auto v = p.metrics.summary_field(name);
  if (!v) return "–";
  if (v->kind != JsonValue::Kind::number) return v->text;
  return show(v->number);
}

std::string raw_field(const PointResult& p, const char* name) {
  const auto v = p.metrics.summary_field(name);
  return v ? v->text : "";
}

std::string md_cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_outcome(const Outcome& o) {
  switch (o.status) {
    case Status::pass: return fmt::format("pass: {}", o.detail);
    case Status::fail: return fmt::format("fail: {}", o.detail);
    case Status::baseline: return "baseline";
    case Status::not_applicable: break;
  }
  return "";
}

std::string row(const std::vector<std::string>& cells) {
  std::string out = "|";
  for (const auto& c : cells) {
    out += ' ';
    out += md_cell(c);
    out += " |";
  }
  out += '\n';
  return out;
}

}  // namespace

bool PointResult::ran() const { return run.ok() && metrics.summary.has_value(); }

std::string PointResult::status() const {
  if (!run.started) return fmt::format("ERROR {}", run.start_error);
  if (run.signal) return fmt::format("ERROR signal {}", run.signal);
  if (run.exit_code != 0) return fmt::format("ERROR exit {}", run.exit_code);
  if (!metrics.summary) return "FAIL: no summary in metrics.jsonl";
  if (!metrics.problems.empty()) return fmt::format("FAIL: metrics.jsonl {}", metrics.problems.front());
  if (!failed_checks.empty()) return fmt::format("FAIL: {}", recipe::join(failed_checks, "; "));
  return "ok";
}

bool SweepResults::all_ok() const {
  return std::all_of(points.begin(), points.end(), [](const PointResult& p) { return p.ok(); });
}

void evaluate(SweepResults& results) {
  const PointResult* baseline = nullptr;
  for (const auto& p : results.points) {
    if (p.point.is_baseline && p.ran()) baseline = &p;
  }
  for (auto& p : results.points) {
    p.outcomes.clear();
    p.failed_checks.clear();
    for (std::size_t i = 0; i < results.expectations.size(); ++i) {
      const auto& x = results.expectations[i];
      if (!p.ran() || !selects(x, p.point)) {
        p.outcomes.push_back({});
        continue;
      }
      p.outcomes.push_back(check(x, p.metrics, baseline ? &baseline->metrics : nullptr, p.point.is_baseline));
      if (p.outcomes.back().status == Status::fail) p.failed_checks.push_back(fmt::format("#{} {}", i + 1, x.label()));
    }
  }
}

std::string markdown(const SweepResults& results) {
  std::vector<std::string> head{"point", "status", "steps", "final loss", "final val loss", "median tok/s",
                                "activation peak"};
  for (std::size_t i = 0; i < results.expectations.size(); ++i) {
    head.push_back(fmt::format("#{} {}", i + 1, results.expectations[i].label()));
  }
  std::string out = row(head);
  out += '|';
  for (std::size_t i = 0; i < head.size(); ++i) out += i < 2 ? "---|" : (i < 7 ? "---:|" : "---|");
  out += '\n';
  auto fixed4 = [](double v) { return fmt::format("{:.4f}", v); };
  for (const auto& p : results.points) {
    std::vector<std::string> cells{p.point.is_baseline ? fmt::format("{} (baseline)", p.point.id) : p.point.id,
                                   p.status(),
                                   field(p, "steps", [](double v) { return format_value(v); }),
                                   field(p, "final_loss", fixed4),
                                   field(p, "final_val_loss", fixed4),
                                   field(p, "median_tokens_per_s", [](double v) { return format_count(v); }),
                                   field(p, "activation_peak_bytes", [](double v) { return format_bytes(v); })};
    for (const auto& o : p.outcomes) cells.push_back(o.cell());
    out += row(cells);
  }
  // Why each failed run failed: the end of its log, which a table cell cannot hold.
  for (const auto& p : results.points) {
    if (p.run.ok()) continue;
    out += fmt::format("\n{} ({}), last lines of its log.txt:\n\n```\n", p.point.id, p.run.describe());
    for (const auto& line : p.log_tail) out += fmt::format("{}\n", line);
    out += "```\n";
  }
  const auto count = [&](const char* prefix) {
    return std::count_if(results.points.begin(), results.points.end(),
                         [&](const PointResult& p) { return p.status().starts_with(prefix); });
  };
  out += fmt::format("\n{} points: {} ok, {} FAIL, {} ERROR.\n", results.points.size(), count("ok"), count("FAIL"),
                     count("ERROR"));
  return out;
}

std::string csv(const SweepResults& results) {
  // One column per recipe key the points set, so the table pivots without parsing ids.
  std::vector<std::string> keys;
  for (const auto& p : results.points) {
    for (const auto& a : p.point.assignments) {
      if (std::find(keys.begin(), keys.end(), a.key) == keys.end()) keys.push_back(a.key);
    }
  }
  std::vector<std::string> head{"point", "baseline"};
  head.insert(head.end(), keys.begin(), keys.end());
  for (const char* h : {"status", "exit_code", "seconds", "steps", "final_loss", "final_val_loss",
                        "median_tokens_per_s", "activation_peak_bytes"}) {
    head.emplace_back(h);
  }
  for (const auto& x : results.expectations) head.push_back(x.label());
  head.emplace_back("log_tail");
  std::vector<std::string> lines;
  auto add = [&](const std::vector<std::string>& cells) {
    std::vector<std::string> quoted;
    for (const auto& c : cells) quoted.push_back(csv_cell(c));
    lines.push_back(recipe::join(quoted, ","));
  };
  add(head);
  for (const auto& p : results.points) {
    std::vector<std::string> cells{p.point.id, p.point.is_baseline ? "true" : "false"};
    for (const auto& k : keys) {
      const auto it = std::find_if(p.point.assignments.begin(), p.point.assignments.end(),
                                   [&](const Assignment& a) { return a.key == k; });
      cells.push_back(it != p.point.assignments.end() ? it->value : "");
    }
    cells.push_back(p.status());
    cells.push_back(p.run.started && !p.run.signal ? std::to_string(p.run.exit_code) : "");
    cells.push_back(fmt::format("{:.3f}", p.run.seconds));
    for (const char* f : {"steps", "final_loss", "final_val_loss", "median_tokens_per_s", "activation_peak_bytes"}) {
      cells.push_back(raw_field(p, f));
    }
    for (const auto& o : p.outcomes) cells.push_back(csv_outcome(o));
    cells.push_back(p.run.ok() ? "" : recipe::join(p.log_tail, "\n"));
    add(cells);
  }
  std::string out = recipe::join(lines, "\n");
  out += '\n';
  return out;
}

}  // namespace trainer::sweep
