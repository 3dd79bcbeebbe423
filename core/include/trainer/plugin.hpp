// The plugin contract: every plugin library exports one function returning a descriptor
// whose first field is the ABI version. The core reads that field before anything else.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "trainer/config.hpp"

namespace trainer {

// Bump whenever any SDK header changes layout or virtual interface in a way that breaks
// already-built plugins.
inline constexpr std::uint32_t kAbiVersion = 4;

enum class PluginKind : std::uint32_t {
  backend,
  comm,
  model,
  layout,
  recompute,
  overlap,
  failure,
  optimizer,
  schedule,  // pipeline schedules (pipeline.hpp)
};
const char* plugin_kind_name(PluginKind kind);

class Backend;

// Base of every object a plugin creates. Destroyed before its library is unloaded: the
// core keeps every loaded library open until the process exits.
class Plugin {
 public:
  virtual ~Plugin();
};

// What a factory receives: its validated recipe section (defaults filled in) and, for
// kinds that compute, the backend chosen by the recipe.
struct PluginContext {
  const ConfigNode& config;
  Backend* backend = nullptr;
};

struct PluginDescriptor {
  std::uint32_t abi_version;  // must stay the first field
  PluginKind kind;
  const char* name;
  const char* version;
  const char* summary;
  std::unique_ptr<Plugin> (*create)(const PluginContext& context);
  std::vector<KeySpec> (*keys)();  // the recipe keys of its section, besides `plugin`
};

}  // namespace trainer

// Exports the descriptor of a plugin library. Use once per plugin, at namespace scope.
#define TRAINER_PLUGIN(descriptor)                                                     \
  extern "C" __attribute__((visibility("default"))) const ::trainer::PluginDescriptor* \
  trainer_plugin_descriptor() {                                                        \
    return &(descriptor);                                                              \
  }
