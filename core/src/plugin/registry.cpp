#include "plugin/registry.hpp"

#include "recipe/suggest.hpp"

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>

namespace trainer {
namespace {

constexpr const char* kEntryPoint = "trainer_plugin_descriptor";
constexpr const char* kFilePrefix = "trainer_plugin_";

// Libraries stay loaded for the life of the process: a plugin's objects may be held in
// statics, and unloading code under a live object is a crash far from its cause.
struct LoadedLibraries {
  std::mutex mutex;
  std::map<std::filesystem::path, std::unique_ptr<boost::dll::shared_library>> by_path;
};

LoadedLibraries& loaded() {
  static auto* libraries = new LoadedLibraries();  // never destroyed, never unloaded
  return *libraries;
}

bool looks_like_plugin(const std::filesystem::path& p) {
  const auto name = p.filename().string();
  return name.rfind(kFilePrefix, 0) == 0 && p.extension() == ".so";
}

}  // namespace

std::vector<std::filesystem::path> plugin_search_path(const std::vector<std::string>& extra) {
  std::vector<std::filesystem::path> dirs;
  for (const auto& e : extra) dirs.emplace_back(e);
  if (const char* env = std::getenv("TRAINER_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':')) {
      if (!item.empty()) dirs.emplace_back(item);
    }
  }
  const auto core_dir = boost::dll::this_line_location().parent_path();
  dirs.emplace_back((std::filesystem::path(core_dir.string()) / "trainer" / "plugins").lexically_normal());
  return dirs;
}

const PluginDescriptor& load_plugin_file(const std::filesystem::path& path) {
  auto& libs = loaded();
  std::lock_guard lock(libs.mutex);
  const auto canonical = std::filesystem::weakly_canonical(path);
  auto it = libs.by_path.find(canonical);
  if (it == libs.by_path.end()) {
    if (!std::filesystem::is_regular_file(path)) throw PluginError(path.string() + ": no such plugin file");
    auto lib = std::make_unique<boost::dll::shared_library>();
    std::error_code ec;
    lib->load(canonical.string(), boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local, ec);
    if (ec) {
      throw PluginError(path.string() + ": not a loadable plugin library (" + ec.message() + ")");
    }
    if (!lib->has(kEntryPoint)) {
      throw PluginError(path.string() + ": not a trainer plugin (it exports no '" +
                        kEntryPoint + "'; define one with TRAINER_PLUGIN(descriptor))");
    }
    it = libs.by_path.emplace(canonical, std::move(lib)).first;
  }
  auto entry = it->second->get<const PluginDescriptor*()>(kEntryPoint);
  const PluginDescriptor* descriptor = entry();
  if (!descriptor) throw PluginError(path.string() + ": the plugin returned no descriptor");
  // Only the first field is read before the version is known to match.
  if (descriptor->abi_version != kAbiVersion) {
    throw PluginError(path.string() + ": built for plugin ABI version " +
                      std::to_string(descriptor->abi_version) + ", but this trainer uses ABI version " +
                      std::to_string(kAbiVersion) + "; rebuild the plugin against this SDK");
  }
  return *descriptor;
}

PluginScan scan_plugins(const std::vector<std::filesystem::path>& dirs) {
  PluginScan scan;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.is_regular_file() && looks_like_plugin(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      try {
        scan.plugins.push_back({file, &load_plugin_file(file)});
      } catch (const PluginError& e) {
        scan.problems.push_back({file, e.what()});
      }
    }
  }
  return scan;
}

const PluginDescriptor& find_plugin(PluginKind kind, const std::string& name,
                                    const std::vector<std::filesystem::path>& dirs) {
  const PluginScan scan = scan_plugins(dirs);
  std::vector<std::string> available;
  for (const auto& p : scan.plugins) {
    if (p.descriptor->kind != kind) continue;
    if (name == p.descriptor->name) return *p.descriptor;
    if (std::find(available.begin(), available.end(), p.descriptor->name) == available.end()) {
      available.emplace_back(p.descriptor->name);
    }
  }
  std::string message = std::string("no ") + plugin_kind_name(kind) + " plugin named '" + name + "'";
  if (auto guess = recipe::closest_match(name, available)) {
    message += "; did you mean '";
    message += *guess;
    message += "'?";
  }
  if (available.empty()) {
    message += "; no plugin of that kind was found";
  } else {
    message += "; available: ";
    for (std::size_t i = 0; i < available.size(); ++i) {
      if (i) message += ", ";
      message += available[i];
    }
  }
  message += " (searched:";
  for (const auto& d : dirs) {
    message += ' ';
    message += d.string();
  }
  message += ")";
  for (const auto& problem : scan.problems) {
    message += "\n  skipped ";
    message += problem.message;
  }
  throw PluginError(message);
}

}  // namespace trainer
