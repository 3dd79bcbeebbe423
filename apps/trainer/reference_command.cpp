// trainer reference: every recipe key — the core's schema and each installed plugin's
// declared keys — as Markdown. docs/recipes.md embeds this output, and a test keeps the two
// equal, so the reference cannot drift from the code.
#include <fmt/format.h>

#include "commands.hpp"
#include "plugin/registry.hpp"
#include "recipe/schema.hpp"

namespace trainer::cli {
namespace {

std::string number_text(double v) {
  if (v == static_cast<double>(static_cast<long long>(v))) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{:g}", v);
}

std::string range_text(const KeySpec& k) {
  if (!k.choices.empty()) {
    std::string s;
    for (std::size_t i = 0; i < k.choices.size(); ++i) s += fmt::format("{}`{}`", i ? ", " : "", k.choices[i]);
    return s;
  }
  if (k.min && k.max) return number_text(*k.min) + " … " + number_text(*k.max);
  if (k.min) return "≥ " + number_text(*k.min);
  if (k.max) return "≤ " + number_text(*k.max);
  return "";
}

std::string default_text(const KeySpec& k) {
  if (k.required) return "**required**";
  if (k.default_value.empty()) return "—";
  return fmt::format("`{}`", k.default_value);
}

void key_table(const std::vector<KeySpec>& keys, const std::string& prefix) {
  if (keys.empty()) return;
  fmt::print("| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n");
  for (const auto& k : keys) {
    fmt::print("| `{}{}` | {} | {} | {} | {} |\n", prefix, k.name, key_type_name(k.type), default_text(k),
               range_text(k), k.doc);
  }
  fmt::print("\n");
}

void section(const recipe::SectionSchema& s, const std::string& path, const PluginScan& scan) {
  fmt::print("### `{}`{}\n\n{}\n\n", path, s.optional ? " (optional)" : "", s.doc);
  if (s.plugin_kind) {
    fmt::print("A plugin section: `plugin` names the {} plugin (default `{}`); `{}: NAME` is short for "
               "`{}: {{plugin: NAME}}`.\n\n",
               plugin_kind_name(*s.plugin_kind), s.default_plugin, path, path);
  }
  if (s.list) fmt::print("A list: each item is a map with these keys.\n\n");
  key_table(s.keys, s.list ? path + "[]." : path + ".");
  if (s.plugin_kind) {
    for (const auto& p : scan.plugins) {
      if (p.descriptor->kind != *s.plugin_kind) continue;
      const auto keys = p.descriptor->keys ? p.descriptor->keys() : std::vector<KeySpec>{};
      fmt::print("#### `{}: {{plugin: {}}}` — {}\n\n", path, p.descriptor->name, p.descriptor->summary);
      if (keys.empty()) fmt::print("No keys of its own.\n\n");
      key_table(keys, path + ".");
    }
  }
  for (const auto& sub : s.sections) section(sub, path + "." + sub.name, scan);
}

}  // namespace

int reference_command(const Args& args) {
  if (!args.empty()) {
    fmt::print(stderr, "usage: trainer reference\n");
    return 2;
  }
  const auto scan = scan_plugins(plugin_search_path());
  const auto& root = recipe::trainer_schema();
  fmt::print("### top level\n\n");
  key_table(root.keys, "");
  for (const auto& s : root.sections) section(s, s.name, scan);
  return 0;
}

}  // namespace trainer::cli
