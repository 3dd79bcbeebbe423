#include "engine/run_log.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

namespace trainer {

namespace {
std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.9g}", v) : "null"; }
}  // namespace

RunLog::RunLog(const std::filesystem::path& run_dir, bool progress_bar) : bar_(progress_bar) {
  if (run_dir.empty()) return;
  std::filesystem::create_directories(run_dir);
  metrics_.open(run_dir / "metrics.jsonl", std::ios::app);
}

RunLog::~RunLog() { clear_bar(); }

void RunLog::clear_bar() {
  if (bar_shown_) {
    std::fputs("\r\033[2K", stdout);
    bar_shown_ = false;
  }
}

void RunLog::json(const std::vector<std::pair<std::string, std::string>>& fields) {
  if (!metrics_.is_open()) return;
  std::string line = "{";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) line += ',';
    line += json_quote(fields[i].first);
    line += ':';
    line += fields[i].second;
  }
  metrics_ << line << "}\n";
  metrics_.flush();  // a crash keeps every line written so far
}

void RunLog::step(const StepRecord& r, bool print_line) {
  json({{"event", "\"step\""}, {"step", std::to_string(r.step)}, {"loss", num(r.loss)}, {"lr", num(r.lr)},
        {"grad_norm", num(r.grad_norm)}, {"tokens_per_s", num(r.tokens_per_s)},
        {"ms_per_step", num(r.ms_per_step)}, {"comm_ms", num(r.comm_ms)}, {"exposed_comm_ms", num(r.exposed_ms)},
        {"skipped", r.skipped ? "true" : "false"}});
  if (print_line) {
    clear_bar();
    fmt::print("step {:>{}}/{} | loss {:.4f} | lr {:.2e} | grad norm {:.3f} | {} tok/s | {:.1f} ms/step{} | ETA {}{}\n",
               r.step, static_cast<int>(std::to_string(r.total_steps).size()), r.total_steps, r.loss, r.lr,
               r.grad_norm, format_count(r.tokens_per_s), r.ms_per_step,
               r.multi_rank ? fmt::format(" | comm {:.1f} ms, exposed {:.1f} ms", r.comm_ms, r.exposed_ms) : "",
               format_duration(r.eta_s), r.skipped ? " | update skipped: non-finite gradients" : "");
  }
  if (bar_) {
    const int width = 30;
    const int filled = static_cast<int>(width * static_cast<double>(r.step) / static_cast<double>(r.total_steps));
    fmt::print("\r\033[2K[{:#<{}}{:.<{}}] {}/{} loss {:.4f} ETA {}", "", filled, "", width - filled, r.step,
               r.total_steps, r.loss, format_duration(r.eta_s));
    bar_shown_ = true;
  }
  std::fflush(stdout);
}

void RunLog::eval(std::int64_t step, double val_loss, std::optional<double> floor, double elapsed_s,
                  bool print_line) {
  std::vector<std::pair<std::string, std::string>> fields{{"event", "\"eval\""},
                                                          {"step", std::to_string(step)},
                                                          {"val_loss", num(val_loss)},
                                                          {"elapsed_s", num(elapsed_s)}};
  std::string extra;
  if (floor) {
    fields.emplace_back("entropy_floor", num(*floor));
    extra = fmt::format(" (entropy floor {:.4f}, {:+.1f}% above)", *floor, 100.0 * (val_loss / *floor - 1.0));
  }
  json(fields);
  if (!print_line) return;
  clear_bar();
  fmt::print("eval step {} | val loss {:.4f}{}\n", step, val_loss, extra);
  std::fflush(stdout);
}

void RunLog::note(const std::string& line) {
  clear_bar();
  fmt::print("{}\n", line);
  std::fflush(stdout);
}

}  // namespace trainer
