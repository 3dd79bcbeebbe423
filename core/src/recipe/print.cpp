#include "recipe/print.hpp"

#include <algorithm>
#include <cstdio>

namespace trainer::recipe {
namespace {

bool needs_quotes(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return true;
  const unsigned char first = static_cast<unsigned char>(s.front());
  const unsigned char last = static_cast<unsigned char>(s.back());
  if (first == ' ' || last == ' ' || last == ':') return true;
  // These start a non-plain scalar or a structure; '-', '?', ':' only when a space follows.
  if (std::string_view("[]{},#&*!|>'\"%@`").find(static_cast<char>(first)) != std::string_view::npos) {
    return true;
  }
  if ((first == '-' || first == '?' || first == ':') && (s.size() == 1 || s[1] == ' ')) return true;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  // Flow indicators would split a value printed inside [a, b].
  if (s.find_first_of(",[]{}") != std::string::npos) return true;
  return std::any_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

bool all_scalars(const ConfigNode& list) {
  return std::all_of(list.items().begin(), list.items().end(),
                     [](const ConfigNode& n) { return n.is_scalar() || n.is_null(); });
}

std::string inline_value(const ConfigNode& node);

std::string flow_list(const ConfigNode& list) {
  std::string out = "[";
  for (std::size_t i = 0; i < list.items().size(); ++i) {
    if (i) out += ", ";
    out += inline_value(list.items()[i]);
  }
  return out + "]";
}

// Values that fit after "key: " or "- ": scalars, null, empty collections, scalar lists.
std::string inline_value(const ConfigNode& node) {
  switch (node.kind()) {
    case ConfigNode::Kind::scalar: return yaml_scalar(node.text());
    case ConfigNode::Kind::null: return "null";
    case ConfigNode::Kind::map: return "{}";
    case ConfigNode::Kind::list: return flow_list(node);
  }
  return "null";
}

bool is_inline(const ConfigNode& node) {
  if (node.is_map()) return node.entries().empty();
  if (node.is_list()) return all_scalars(node);
  return true;
}

void emit(std::string& out, const ConfigNode& node, int indent, bool first_inline);

// Entries of a map at `indent`; with first_inline the first line's indentation was
// already written (after "- ").
void emit_map(std::string& out, const ConfigNode& map, int indent, bool first_inline) {
  bool first = true;
  for (const auto& [key, value] : map.entries()) {
    if (!(first && first_inline)) out.append(static_cast<std::size_t>(indent), ' ');
    first = false;
    out += yaml_scalar(key);
    out += ':';
    if (is_inline(value)) {
      out += ' ';
      out += inline_value(value);
      out += '\n';
    } else {
      out += "\n";
      emit(out, value, indent + 2, false);
    }
  }
}

void emit_list(std::string& out, const ConfigNode& list, int indent, bool first_inline) {
  bool first = true;
  for (const auto& item : list.items()) {
    if (!(first && first_inline)) out.append(static_cast<std::size_t>(indent), ' ');
    first = false;
    out += "- ";
    if (is_inline(item)) {
      out += inline_value(item);
      out += '\n';
    } else {
      emit(out, item, indent + 2, true);
    }
  }
}

void emit(std::string& out, const ConfigNode& node, int indent, bool first_inline) {
  if (node.is_map()) {
    emit_map(out, node, indent, first_inline);
  } else if (node.is_list()) {
    emit_list(out, node, indent, first_inline);
  } else {
    out += inline_value(node);
    out += '\n';
  }
}

}  // namespace

std::string yaml_scalar(const std::string& text) {
  if (!needs_quotes(text)) return text;
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string print_recipe(const ConfigNode& recipe) {
  std::string out;
  if (is_inline(recipe)) return inline_value(recipe) + "\n";
  emit(out, recipe, 0, false);
  return out;
}

}  // namespace trainer::recipe
