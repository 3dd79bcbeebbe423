// Test support: create plugins from the build's plugin folder with their declared defaults,
// exactly as the core does for a recipe section, with a few keys overridden.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "plugin/registry.hpp"
#include "trainer/backend.hpp"

namespace trainer::test {

inline ConfigNode plugin_config(const PluginDescriptor& d, const std::map<std::string, std::string>& overrides) {
  auto cfg = ConfigNode::map();
  cfg["plugin"] = ConfigNode::scalar(d.name);
  for (const auto& k : d.keys()) {
    if (!k.default_value.empty()) {
      if (k.type == KeyType::string_list) {
        cfg[k.name] = ConfigNode::list();
      } else {
        cfg[k.name] = ConfigNode::scalar(k.default_value);
      }
    }
  }
  for (const auto& [k, v] : overrides) cfg[k] = ConfigNode::scalar(v);
  return cfg;
}

// Holds the config alive as long as the object (plugins may keep references to it).
template <class Interface>
struct Made {
  std::unique_ptr<ConfigNode> config;
  std::unique_ptr<Interface> object;
  Interface* operator->() const { return object.get(); }
  Interface& operator*() const { return *object; }
};

template <class Interface>
Made<Interface> make_plugin(PluginKind kind, const std::string& name,
                            const std::map<std::string, std::string>& overrides = {}, Backend* backend = nullptr) {
  const PluginDescriptor* d = &find_plugin(kind, name, {TRAINER_TEST_PLUGIN_DIR});
  Made<Interface> m;
  m.config = std::make_unique<ConfigNode>(plugin_config(*d, overrides));
  m.object = create_plugin<Interface>(*d, PluginContext{*m.config, backend});
  return m;
}

}  // namespace trainer::test
