#include "engine/components.hpp"

#include "plugin/registry.hpp"
#include "trainer/failure.hpp"

namespace trainer {

std::vector<std::filesystem::path> recipe_plugin_path(const ConfigNode& recipe) {
  std::vector<std::string> extra;
  if (recipe.has("plugin_path")) extra = recipe.at("plugin_path").as_string_list();
  return plugin_search_path(extra);
}

namespace {

template <class Interface>
std::unique_ptr<Interface> create_section(const ConfigNode& recipe, const char* section, PluginKind kind,
                                          const std::vector<std::filesystem::path>& dirs, Backend* backend) {
  const ConfigNode& node = recipe.at(section);
  const auto& descriptor = find_plugin(kind, node.get_string("plugin"), dirs);
  return create_plugin<Interface>(descriptor, PluginContext{node, backend});
}

}  // namespace

Components create_components(const ConfigNode& recipe, bool multi_rank) {
  const auto dirs = recipe_plugin_path(recipe);
  Components c;
  c.backend = create_section<Backend>(recipe, "backend", PluginKind::backend, dirs, nullptr);
  c.model = create_section<Model>(recipe, "model", PluginKind::model, dirs, c.backend.get());
  c.optimizer = create_section<Optimizer>(recipe, "optimizer", PluginKind::optimizer, dirs, c.backend.get());
  c.recompute = create_section<RecomputePolicy>(recipe, "recompute", PluginKind::recompute, dirs, c.backend.get());
  c.layout = create_section<Layout>(recipe, "layout", PluginKind::layout, dirs, c.backend.get());
  c.overlap = create_section<OverlapPolicy>(recipe, "overlap", PluginKind::overlap, dirs, c.backend.get());
  if (multi_rank) c.comm = create_section<CommBackend>(recipe, "comm", PluginKind::comm, dirs, c.backend.get());
  return c;
}

std::unique_ptr<FailurePolicy> create_failure_policy(const ConfigNode& recipe) {
  if (!recipe.has("failure")) return nullptr;
  const ConfigNode& node = recipe.at("failure");
  const auto& descriptor = find_plugin(PluginKind::failure, node.get_string("plugin"), recipe_plugin_path(recipe));
  return create_plugin<FailurePolicy>(descriptor, PluginContext{node, nullptr});
}

std::variant<std::vector<KeySpec>, std::string> plugin_keys(const std::vector<std::filesystem::path>& dirs,
                                                            PluginKind kind, const std::string& name) {
  try {
    const auto& d = find_plugin(kind, name, dirs);
    return d.keys ? d.keys() : std::vector<KeySpec>{};
  } catch (const PluginError& e) {
    return std::string(e.what());
  }
}

}  // namespace trainer
