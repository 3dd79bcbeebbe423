#include "engine/run_log.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

namespace trainer {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const auto total = static_cast<long long>(s + 0.5);
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
}

std::string format_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.2f} {}", b, units[u]);
}

std::string format_count(double n) {
  auto digits = fmt::format("{:.0f}", n);
  std::string out;
  const int len = static_cast<int>(digits.size());
  for (int i = 0; i < len; ++i) {
    out += digits[static_cast<std::size_t>(i)];
    const int rest = len - 1 - i;
    if (rest > 0 && rest % 3 == 0 && digits[static_cast<std::size_t>(i)] != '-') out += ',';
  }
  return out;
}

std::string RunLog::json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += c;
    }
  }
  return out + "\"";
}

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
  std::string line = "{";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    line += (i ? "," : "") + json_string(fields[i].first) + ":" + fields[i].second;
  }
  if (!metrics_.is_open()) return;
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
