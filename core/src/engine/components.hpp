// The plugins a recipe names, created in dependency order (backend first).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/comm.hpp"
#include "trainer/config.hpp"
#include "trainer/layout.hpp"
#include "trainer/model.hpp"
#include "trainer/optimizer.hpp"
#include "trainer/recompute.hpp"

namespace trainer {

struct Components {
  std::unique_ptr<Backend> backend;  // declared first: destroyed last
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<RecomputePolicy> recompute;
  std::unique_ptr<Layout> layout;
  std::unique_ptr<OverlapPolicy> overlap;
  std::unique_ptr<CommBackend> comm;  // only when the world has more than one rank
};

std::vector<std::filesystem::path> recipe_plugin_path(const ConfigNode& recipe);

// Creates every component of a validated recipe.
Components create_components(const ConfigNode& recipe, bool multi_rank);

class FailurePolicy;
// The recipe's failure policy; null when the recipe has no `failure` section. Made apart
// from the other components: the supervisor consults it, and it needs no backend.
std::unique_ptr<FailurePolicy> create_failure_policy(const ConfigNode& recipe);

// Accepted keys of a plugin, or why it cannot be found: what recipe validation consults.
std::variant<std::vector<KeySpec>, std::string> plugin_keys(const std::vector<std::filesystem::path>& dirs,
                                                            PluginKind kind, const std::string& name);

}  // namespace trainer
