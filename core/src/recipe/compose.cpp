#include "recipe/compose.hpp"

#include <fmt/format.h>

#include "recipe/yaml_loader.hpp"

namespace trainer::recipe {
namespace fs = std::filesystem;

void merge_into(ConfigNode& base, ConfigNode overlay) {
  if (!base.is_map() || !overlay.is_map()) {
    base = std::move(overlay);
    return;
  }
  base.set_origin(overlay.origin());
  for (auto& [key, value] : overlay.entries()) {
    if (base.has(key)) {
      merge_into(base[key], std::move(value));
    } else {
      base[key] = std::move(value);
    }
  }
}

namespace {

struct Frame {
  fs::path identity;  // canonical path, so that ./a.yaml and a.yaml are one file
  std::string shown;
};

class Composer {
 public:
  Composer(const SectionSchema& schema, std::vector<Diagnostic>& diagnostics)
      : schema_(schema), diagnostics_(diagnostics) {}

  ConfigNode compose(const fs::path& file, const Origin& requested_at) {
    const std::string shown = file.generic_string();
    std::optional<ConfigNode> tree = read_yaml_file(file, requested_at, diagnostics_);
    if (!tree) return ConfigNode::map(Origin{shown, 0, 0});
    if (tree->is_null()) return ConfigNode::map(Origin{shown, 0, 0});
    if (!tree->is_map()) {
      diagnostics_.push_back({tree->origin(), "a recipe must be a map of sections", ""});
      return ConfigNode::map(Origin{shown, 0, 0});
    }
    expand_plugin_shorthands(*tree, schema_);

    ConfigNode result = ConfigNode::map(tree->origin());
    if (tree->has("extends")) {
      const ConfigNode extends = tree->at("extends");
      tree->erase("extends");
      for (const ConfigNode* base : base_names(extends)) {
        fs::path base_path = fs::path(base->text());
        if (base_path.is_relative()) base_path = file.parent_path() / base_path;
        base_path = base_path.lexically_normal();
        if (auto cycle = find_cycle(base_path)) {
          diagnostics_.push_back({base->origin(), *cycle,
                                   "a recipe cannot extend itself, directly or through its bases"});
          continue;
        }
        chain_.push_back({identity(base_path), base_path.generic_string()});
        merge_into(result, compose(base_path, base->origin()));
        chain_.pop_back();
      }
    }
    merge_into(result, std::move(*tree));
    return result;
  }

  void start(const fs::path& file) { chain_.push_back({identity(file), file.generic_string()}); }

 private:
  std::vector<const ConfigNode*> base_names(const ConfigNode& extends) {
    std::vector<const ConfigNode*> names;
    if (extends.is_scalar()) {
      names.push_back(&extends);
      return names;
    }
    if (extends.is_list()) {
      for (const auto& item : extends.items()) {
        if (item.is_scalar()) {
          names.push_back(&item);
        } else {
          diagnostics_.push_back({item.origin(), "each 'extends' entry must be a file name", ""});
        }
      }
      return names;
    }
    diagnostics_.push_back({extends.origin(), "'extends' must be a file name or a list of them",
                            "e.g. extends: base.yaml"});
    return names;
  }

  std::optional<std::string> find_cycle(const fs::path& next) const {
    const fs::path id = identity(next);
    for (std::size_t i = 0; i < chain_.size(); ++i) {
      if (chain_[i].identity != id) continue;
      std::string text = "extends cycle: ";
      for (std::size_t j = i; j < chain_.size(); ++j) text += chain_[j].shown + " -> ";
      return text + next.generic_string();
    }
    return std::nullopt;
  }

  static fs::path identity(const fs::path& file) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(file, ec);
    return ec ? fs::absolute(file).lexically_normal() : canonical;
  }

  const SectionSchema& schema_;
  std::vector<Diagnostic>& diagnostics_;
  std::vector<Frame> chain_;
};

}  // namespace

ConfigNode compose_recipe_file(const fs::path& file, const SectionSchema& schema,
                               std::vector<Diagnostic>& diagnostics) {
  Composer composer(schema, diagnostics);
  composer.start(file);
  return composer.compose(file, Origin{file.generic_string(), 0, 0});
}

}  // namespace trainer::recipe
