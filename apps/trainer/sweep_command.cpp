// trainer sweep: run one recipe over many variants (a grid of overrides and/or explicit
// points) as child `trainer run` processes, then check every point's metrics against the
// sweep's expectations. Made for CI: the exit code says whether every point ran and held.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "data/atomic_file.hpp"
#include "recipe/diagnostics.hpp"
#include "recipe/overrides.hpp"
#include "sweep/plan.hpp"
#include "sweep/report.hpp"
#include "sweep/runner.hpp"
#include "sweep/sweep_file.hpp"

namespace trainer::cli {
namespace {

namespace fs = std::filesystem;
using namespace trainer::sweep;

constexpr const char* kSweepUsage =
    "usage: trainer sweep SWEEP.yaml [--dry-run] [--concurrency N] [key=value ...]\n";

struct SweepArgs {
  std::string file;
  std::vector<std::string> overrides;
  bool dry_run = false;
  int concurrency = 0;  // 0: the sweep file's
};

bool parse_args(const Args& args, SweepArgs& out) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--dry-run") {
      out.dry_run = true;
    } else if (a == "--concurrency" || a.starts_with("--concurrency=")) {
      std::string value = a.size() > 13 ? a.substr(14) : (i + 1 < args.size() ? args[++i] : "");
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n < 1 || n > 1024) {
        fmt::print(stderr, "trainer sweep: --concurrency expects a number from 1 to 1024, got '{}'\n{}", value,
                   kSweepUsage);
        return false;
      }
      out.concurrency = static_cast<int>(n);
    } else if (a.starts_with("--")) {
      fmt::print(stderr, "trainer sweep: unknown option '{}'\n{}", a, kSweepUsage);
      return false;
    } else if (out.file.empty() && a.find('=') == std::string::npos) {
      out.file = a;
    } else {
      out.overrides.push_back(a);
    }
  }
  if (out.file.empty()) {
    fmt::print(stderr, "{}", kSweepUsage);
    return false;
  }
  return true;
}

// Command-line overrides are checked here so that a typo stops the sweep before it starts
// N runs that would each fail the same way.
void check_overrides(const std::vector<std::string>& overrides, std::vector<recipe::Diagnostic>& diagnostics) {
  for (const auto& o : overrides) {
    if (!recipe::parse_override(o, diagnostics)) continue;
    const std::string key = o.substr(0, o.find('='));
    if (key == "output" || key == "output.dir") {
      diagnostics.push_back({recipe::command_line_origin(),
                             fmt::format("'{}' is set by the sweep: each point runs in <output>/<point id>", key),
                             "set the sweep file's `output:` instead"});
    }
  }
}

// For --dry-run: arguments as a shell would need them.
std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/=+:@") ==
                        std::string::npos) {
    return s;
  }
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  out += "'";
  return out;
}

void write_results(const fs::path& file, const std::string& text) {
  try {
    data::write_text_atomically(file, text);
  } catch (const std::exception& e) {
    fmt::print(stderr, "trainer sweep: cannot write {}: {}\n", file.string(), e.what());
  }
}

}  // namespace

int sweep_command(const Args& args) {
  SweepArgs a;
  if (!parse_args(args, a)) return 2;
  SweepFile sweep;
  Plan plan;
  try {
    sweep = load_sweep_file(a.file);
    std::vector<recipe::Diagnostic> diagnostics;
    check_overrides(a.overrides, diagnostics);
    plan = make_plan(sweep, diagnostics);
    if (!diagnostics.empty()) throw recipe::RecipeError(std::move(diagnostics));
  } catch (const recipe::RecipeError& e) {
    fmt::print(stderr, "{}", recipe::format_diagnostics(e.diagnostics));
    return 2;
  }
  if (a.concurrency > 0) sweep.concurrency = a.concurrency;
  const std::size_t n = plan.points.size();

  if (a.dry_run) {
    fmt::print("{} points from {} (base {}), {} at a time, output {}\n", n, a.file, sweep.base.string(),
               sweep.concurrency, sweep.output.string());
    for (std::size_t i = 0; i < n; ++i) {
      const auto& p = plan.points[i];
      std::string command = "trainer run";
      for (const auto& arg : run_arguments(sweep, p, a.overrides)) {
        command += ' ';
        command += shell_quote(arg);
      }
      fmt::print("[{}/{}] {}{}\n    {} --quiet\n", i + 1, n, p.id,
                 p.added_for_baseline ? " (baseline, added)" : (p.is_baseline ? " (baseline)" : ""), command);
    }
    for (std::size_t i = 0; i < sweep.expect.size(); ++i) {
      fmt::print("expect #{}: {}\n", i + 1, sweep.expect[i].label());
    }
    return 0;
  }

  // Each point's folder starts clean of what the sweep reads: the run log appends to
  // metrics.jsonl, so a previous sweep's lines would otherwise mix with this one's.
  const fs::path self = fs::read_symlink("/proc/self/exe");
  std::vector<Job> jobs;
  for (const auto& p : plan.points) {
    const fs::path dir = sweep.output / p.id;
    fs::create_directories(dir);
    fs::remove(dir / "metrics.jsonl");
    auto run_args = run_arguments(sweep, p, a.overrides);
    run_args.insert(run_args.begin(), "run");
    run_args.emplace_back("--quiet");
    jobs.push_back(Job{p.id, self, std::move(run_args), dir / "log.txt"});
  }
  fmt::print(stderr, "sweep {}: {} points, {} at a time, in {}\n", a.file, n, sweep.concurrency,
             sweep.output.string());
  const auto results = run_jobs(jobs, sweep.concurrency, [&](const JobEvent& e) {
    const auto& id = plan.points[e.index].id;
    if (e.kind == JobEvent::Kind::started) {
      fmt::print(stderr, "[{}/{}] {} started\n", e.index + 1, n, id);
    } else if (e.result->ok()) {
      fmt::print(stderr, "[{}/{}] {} done in {:.1f} s\n", e.index + 1, n, id, e.result->seconds);
    } else {
      fmt::print(stderr, "[{}/{}] {} FAILED ({}) after {:.1f} s; see {}\n", e.index + 1, n, id, e.result->describe(),
                 e.result->seconds, jobs[e.index].log.string());
    }
    std::fflush(stderr);
  });

  SweepResults report;
  report.expectations = sweep.expect;
  for (std::size_t i = 0; i < n; ++i) {
    PointResult r;
    r.point = plan.points[i];
    r.run = results[i];
    r.metrics = read_metrics(sweep.output / r.point.id / "metrics.jsonl");
    r.log_tail = tail_lines(jobs[i].log, 12);
    report.points.push_back(std::move(r));
  }
  evaluate(report);
  const std::string table = markdown(report);
  fmt::print("{}", table);
  write_results(sweep.output / "results.md", table);
  write_results(sweep.output / "results.csv", csv(report));
  fmt::print("results: {} and {}\n", (sweep.output / "results.md").string(), (sweep.output / "results.csv").string());
  return report.all_ok() ? 0 : 1;
}

}  // namespace trainer::cli
