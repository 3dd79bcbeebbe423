// Shared fixtures of the recipe specifications: temporary recipe files and a fake plugin
// registry, so the tests need no plugin libraries.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "recipe/recipe.hpp"

namespace recipe_test {

using trainer::ConfigNode;
using trainer::recipe::Diagnostic;

// A fresh folder under the system temp folder, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes `text` to `name` (subfolders created) and returns its full path.
  std::filesystem::path write(const std::string& name, const std::string& text) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// model: gpt (n_layer, n_head, n_embd, dropout); backend: cpu (threads), cuda (device);
// optimizer: adamw (beta1, beta2, weight_decay), sgd (momentum); recompute: none, full,
// selective (layers). Anything else: "no <kind> plugin '<name>'; available: ...".
trainer::recipe::PluginKeyLookup fake_lookup();

// The diagnostics load_recipe throws (empty when it loads).
std::vector<Diagnostic> load_errors(const std::filesystem::path& file,
                                    const std::vector<std::string>& overrides = {});

// load_recipe + validate_recipe with fake_lookup; load errors fail the test.
std::vector<Diagnostic> validate_file(const std::filesystem::path& file, ConfigNode* out = nullptr,
                                      const std::vector<std::string>& overrides = {});

// The one diagnostic whose message contains `text`; fails the test unless exactly one does.
const Diagnostic& only(const std::vector<Diagnostic>& diagnostics, const std::string& text);

// "line:column" of an origin, for compact assertions.
std::string at(const Diagnostic& d);

// Same structure and text, origins ignored.
bool same_tree(const ConfigNode& a, const ConfigNode& b);

// A minimal valid recipe body, to which tests append or prepend.
inline constexpr const char* kMinimal = "data:\n  train: tokens.bin\ntrain:\n  steps: 10\n";

}  // namespace recipe_test
