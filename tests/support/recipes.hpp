// Test support: recipes written to a private temporary folder and resolved the way
// `trainer run` resolves them, with a small synthetic corpus made on first use.
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/resolve_recipe.hpp"

namespace trainer::test {

class RecipeDir {
 public:
  explicit RecipeDir(const std::string& name) {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("trainer-test-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~RecipeDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::filesystem::path& path() const { return dir_; }

  std::filesystem::path write(const std::string& file, const std::string& text) const {
    const auto p = dir_ / file;
    std::ofstream(p) << text;
    return p;
  }

  // A tiny model on a tiny synthetic corpus; `extra` is appended (later keys win).
  ConfigNode tiny_recipe(const std::vector<std::string>& overrides = {}) const {
    const auto data = (dir_ / "data").string();
    const auto text = "model: {plugin: gpt, n_layer: 2, n_head: 2, d_model: 16, vocab: 32, seq_len: 16}\n"
                      "data:\n  train: " + data + "/train.bin\n  val: " + data + "/val.bin\n"
                      "  synth: {vocab: 32, branching: 3, train_tokens: 20000, val_tokens: 4000, seed: 5}\n"
                      "optimizer: {plugin: adamw, lr: 1.0e-2, warmup_steps: 0}\n"
                      "train: {steps: 3, micro_batch: 4, global_batch: 8, eval_every: 100, eval_batches: 2, log_every: 1}\n"
                      "output: {dir: " + (dir_ / "run").string() + "}\n";
    return load_and_validate_recipe(write("recipe.yaml", text), overrides);
  }

 private:
  std::filesystem::path dir_;
};

}  // namespace trainer::test
