// Shared fixtures of the sweep specifications: a temporary folder, sweep files written into
// it, synthetic metrics.jsonl contents.
#pragma once
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "recipe/diagnostics.hpp"
#include "sweep/metrics.hpp"
#include "sweep/sweep_file.hpp"

namespace sweep_test {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() / fmt::format("trainer_sweep_{}_{}", ::getpid(), counter++);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::filesystem::path write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A sweep file next to an (empty) base recipe "base.yaml"; returns what load_sweep_file
// throws (empty when the file is valid) and the parsed sweep through *out.
inline std::vector<trainer::recipe::Diagnostic> sweep_errors(const TempDir& dir, const std::string& text,
                                                             trainer::sweep::SweepFile* out = nullptr) {
  dir.write("base.yaml", "train: {steps: 1}\n");
  const auto file = dir.write("s.yaml", text);
  try {
    auto s = trainer::sweep::load_sweep_file(file);
    if (out) *out = std::move(s);
  } catch (const trainer::recipe::RecipeError& e) {
    return e.diagnostics;
  }
  return {};
}

inline trainer::sweep::SweepFile load(const TempDir& dir, const std::string& text) {
  trainer::sweep::SweepFile s;
  const auto errors = sweep_errors(dir, text, &s);
  if (!errors.empty()) throw trainer::recipe::RecipeError(errors);
  return s;
}

inline std::string at(const trainer::recipe::Diagnostic& d) {
  return fmt::format("{}:{}", d.origin.line, d.origin.column);
}

// metrics.jsonl text of a run: one step line per loss, an eval at the end, a summary.
inline std::string metrics_text(const std::vector<double>& losses, double val_loss, long activation_peak,
                                const std::string& extra_summary = "") {
  std::string out;
  for (std::size_t i = 0; i < losses.size(); ++i) {
    out += fmt::format(
        "{{\"event\":\"step\",\"step\":{},\"loss\":{:.9g},\"lr\":0.001,\"grad_norm\":1.5,\"tokens_per_s\":1000,"
        "\"ms_per_step\":2,\"skipped\":false}}\n",
        i + 1, losses[i]);
  }
  out += fmt::format("{{\"event\":\"eval\",\"step\":{},\"val_loss\":{:.9g}}}\n", losses.size(), val_loss);
  out += fmt::format(
      "{{\"event\":\"summary\",\"steps\":{},\"final_loss\":{:.9g},\"final_val_loss\":{:.9g},"
      "\"median_tokens_per_s\":1000,\"wall_s\":0.5,\"activation_peak_bytes\":{}{}}}\n",
      losses.size(), losses.empty() ? 0.0 : losses.back(), val_loss, activation_peak, extra_summary);
  return out;
}

inline trainer::sweep::RunMetrics metrics(const TempDir& dir, const std::string& name, const std::string& text) {
  return trainer::sweep::read_metrics(dir.write(name, text));
}

}  // namespace sweep_test
