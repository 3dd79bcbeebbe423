// PluginRegistry: finds plugin libraries on the search path, checks their descriptors, and
// keeps every loaded library open until the process exits (objects a plugin created must
// never outlive its code).
#pragma once
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/plugin.hpp"

namespace trainer {

class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PluginFile {
  std::filesystem::path path;
  const PluginDescriptor* descriptor = nullptr;
};

struct PluginProblem {
  std::filesystem::path path;
  std::string message;
};

struct PluginScan {
  std::vector<PluginFile> plugins;      // in search-path order; the first of a (kind, name) wins
  std::vector<PluginProblem> problems;  // files that look like plugins but cannot be used
};

// The folders searched, in order: `extra` (a recipe's plugin_path), then TRAINER_PLUGIN_PATH
// (colon-separated), then the plugin folder beside libtrainer (<libdir>/trainer/plugins).
std::vector<std::filesystem::path> plugin_search_path(const std::vector<std::string>& extra = {});

// Loads one file and returns its descriptor; throws PluginError naming the file when it is
// not a loadable library, exports no descriptor, or was built for another ABI.
const PluginDescriptor& load_plugin_file(const std::filesystem::path& path);

// Loads every trainer_plugin_*.so in `dirs`.
PluginScan scan_plugins(const std::vector<std::filesystem::path>& dirs);

// The descriptor of plugin `name` of `kind`; throws PluginError listing the plugins of that
// kind that do exist (and any unusable files) when there is none.
const PluginDescriptor& find_plugin(PluginKind kind, const std::string& name,
                                    const std::vector<std::filesystem::path>& dirs);

// Creates the object and checks it has the interface `kind` promises.
template <class Interface>
std::unique_ptr<Interface> create_plugin(const PluginDescriptor& descriptor,
                                         const PluginContext& context) {
  std::unique_ptr<Plugin> object = descriptor.create(context);
  auto* typed = dynamic_cast<Interface*>(object.get());
  if (!typed) {
    throw PluginError(std::string("plugin '") + descriptor.name + "' (" +
                      plugin_kind_name(descriptor.kind) +
                      ") created an object of the wrong interface");
  }
  object.release();
  return std::unique_ptr<Interface>(typed);
}

}  // namespace trainer
