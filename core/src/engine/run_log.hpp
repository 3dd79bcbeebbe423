// RunLog: what a run tells its user — a line per log_every steps on stdout, a progress bar
// when stdout is a terminal, and one JSON object per event in <run dir>/metrics.jsonl.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/text.hpp"

namespace trainer {

struct StepRecord {
  std::int64_t step = 0;  // 1-based, as printed
  std::int64_t total_steps = 0;
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;
  double tokens_per_s = 0;
  double ms_per_step = 0;
  double eta_s = 0;
  bool skipped = false;  // update skipped (non-finite gradients)
  double comm_ms = 0;     // communication: the operations' own time
  double exposed_ms = 0;  // of which the step waited for
  bool multi_rank = false;
};


class RunLog {
 public:
  // No metrics file when run_dir is empty.
  RunLog(const std::filesystem::path& run_dir, bool progress_bar);
  ~RunLog();

  void step(const StepRecord& r, bool print_line);
  // elapsed_s: wall time since the run started, so time-to-loss can be read off the log.
  void eval(std::int64_t step, double val_loss, std::optional<double> floor, double elapsed_s, bool print_line);
  void note(const std::string& line);  // a plain line, also clears the progress bar
  // One flat JSON object: pairs of key and already-formatted JSON value.
  void json(const std::vector<std::pair<std::string, std::string>>& fields);

  static std::string json_string(const std::string& s) { return json_quote(s); }

 private:
  void clear_bar();
  std::ofstream metrics_;
  bool bar_;
  bool bar_shown_ = false;
};

}  // namespace trainer
