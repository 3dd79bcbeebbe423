#include "core/recipe/recipe_helpers.hpp"

#include <atomic>
#include <fstream>
#include <random>

#include <catch2/catch.hpp>
#include <unistd.h>

namespace recipe_test {
namespace fs = std::filesystem;
using trainer::KeySpec;
using trainer::KeyType;
using trainer::PluginKind;

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = fs::temp_directory_path() /
          ("trainer-recipe-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
           std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path TempDir::write(const std::string& name, const std::string& text) const {
  const fs::path file = path_ / name;
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
  return file;
}

namespace {

KeySpec key(std::string name, KeyType type, std::string def, std::optional<double> min = {},
            std::optional<double> max = {}) {
  KeySpec k;
  k.name = std::move(name);
  k.type = type;
  k.default_value = std::move(def);
  k.min = min;
  k.max = max;
  return k;
}

}  // namespace

trainer::recipe::PluginKeyLookup fake_lookup() {
  return [](PluginKind kind, const std::string& name)
             -> std::variant<std::vector<KeySpec>, std::string> {
    using V = std::vector<KeySpec>;
    switch (kind) {
      case PluginKind::model:
        if (name == "gpt") {
          return V{key("n_layer", KeyType::integer, "2", 1), key("n_head", KeyType::integer, "2", 1),
                   key("n_embd", KeyType::integer, "64", 1),
                   key("dropout", KeyType::number, "0", 0, 1)};
        }
        return "no model plugin '" + name + "'; available: gpt";
      case PluginKind::backend:
        if (name == "cpu") return V{key("threads", KeyType::integer, "0", 0)};
        if (name == "cuda") return V{key("device", KeyType::integer, "0", 0)};
        return "no backend plugin '" + name + "'; available: cpu, cuda";
      case PluginKind::optimizer:
        if (name == "adamw") {
          return V{key("beta1", KeyType::number, "0.9", 0, 1), key("beta2", KeyType::number, "0.95", 0, 1),
                   key("weight_decay", KeyType::number, "0.1", 0)};
        }
        if (name == "sgd") return V{key("momentum", KeyType::number, "0", 0)};
        return "no optimizer plugin '" + name + "'; available: adamw, sgd";
      case PluginKind::recompute:
        if (name == "none" || name == "full") return V{};
        if (name == "selective") return V{key("layers", KeyType::integer, "1", 0)};
        return "no recompute plugin '" + name + "'; available: none, full, selective";
      case PluginKind::layout:
        if (name == "replicate" || name == "zero1") return V{};
        return "no layout plugin '" + name + "'; available: replicate, zero1";
      case PluginKind::overlap:
        if (name == "none") return V{};
        if (name == "bucketed") return V{key("bucket_mb", KeyType::number, "25", 0)};
        return "no overlap plugin '" + name + "'; available: none, bucketed";
      case PluginKind::failure:
        if (name == "abort") return V{key("max_bad_steps", KeyType::integer, "3", 0)};
        if (name == "restart") {
          return V{key("max_restarts", KeyType::integer, "3", 0), key("backoff_s", KeyType::number, "1", 0),
                   key("max_bad_steps", KeyType::integer, "3", 0)};
        }
        return "no failure plugin '" + name + "'; available: abort, restart";
      case PluginKind::schedule:
        if (name == "gpipe" || name == "1f1b") return V{};
        if (name == "interleaved") return V{key("virtual_stages", KeyType::integer, "2", 2)};
        return "no schedule plugin '" + name + "'; available: gpipe, 1f1b, interleaved";
      case PluginKind::comm:
        if (name == "gloo") return V{};
        return "no comm plugin '" + name + "'; available: gloo";
      default: return std::string("no plugins of this kind");
    }
  };
}

std::vector<Diagnostic> load_errors(const fs::path& file, const std::vector<std::string>& overrides) {
  try {
    trainer::recipe::load_recipe(file, overrides);
  } catch (const trainer::recipe::RecipeError& e) {
    return e.diagnostics;
  }
  return {};
}

std::vector<Diagnostic> validate_file(const fs::path& file, ConfigNode* out,
                                      const std::vector<std::string>& overrides) {
  ConfigNode recipe;
  try {
    recipe = trainer::recipe::load_recipe(file, overrides);
  } catch (const trainer::recipe::RecipeError& e) {
    FAIL("unexpected load error:\n" << e.what());
  }
  auto diagnostics = trainer::recipe::validate_recipe(recipe, fake_lookup());
  if (out) *out = std::move(recipe);
  return diagnostics;
}

const Diagnostic& only(const std::vector<Diagnostic>& diagnostics, const std::string& text) {
  const Diagnostic* found = nullptr;
  int count = 0;
  for (const auto& d : diagnostics) {
    if (d.message.find(text) != std::string::npos) {
      found = &d;
      ++count;
    }
  }
  INFO(trainer::recipe::format_diagnostics(diagnostics));
  INFO("looking for: " << text);
  REQUIRE(count == 1);
  return *found;
}

std::string at(const Diagnostic& d) {
  return std::to_string(d.origin.line) + ":" + std::to_string(d.origin.column);
}

bool same_tree(const ConfigNode& a, const ConfigNode& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case ConfigNode::Kind::null: return true;
    case ConfigNode::Kind::scalar: return a.text() == b.text();
    case ConfigNode::Kind::list:
      if (a.items().size() != b.items().size()) return false;
      for (std::size_t i = 0; i < a.items().size(); ++i) {
        if (!same_tree(a.items()[i], b.items()[i])) return false;
      }
      return true;
    case ConfigNode::Kind::map:
      if (a.entries().size() != b.entries().size()) return false;
      for (std::size_t i = 0; i < a.entries().size(); ++i) {
        if (a.entries()[i].first != b.entries()[i].first) return false;
        if (!same_tree(a.entries()[i].second, b.entries()[i].second)) return false;
      }
      return true;
  }
  return false;
}

}  // namespace recipe_test
