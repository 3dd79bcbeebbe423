// trainer plugins: what the search path holds, and which files there are unusable.
#include <fmt/format.h>

#include "commands.hpp"
#include "plugin/registry.hpp"

namespace trainer::cli {

int plugins_command(const Args& args) {
  std::vector<std::string> extra;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--plugin-path" && i + 1 < args.size()) {
      extra.push_back(args[++i]);
    } else {
      fmt::print(stderr, "usage: trainer plugins [--plugin-path DIR ...]\n");
      return 2;
    }
  }
  const auto dirs = plugin_search_path(extra);
  const auto scan = scan_plugins(dirs);
  fmt::print("search path:\n");
  for (const auto& d : dirs) fmt::print("  {}\n", d.string());
  fmt::print("\n{:<10} {:<12} {:<8} {}\n", "KIND", "NAME", "VERSION", "FILE");
  for (const auto& p : scan.plugins) {
    fmt::print("{:<10} {:<12} {:<8} {}\n", plugin_kind_name(p.descriptor->kind), p.descriptor->name,
               p.descriptor->version, p.path.string());
  }
  if (!scan.problems.empty()) {
    fmt::print("\nunusable files:\n");
    for (const auto& problem : scan.problems) fmt::print("  {}\n", problem.message);
  }
  return 0;
}

}  // namespace trainer::cli
