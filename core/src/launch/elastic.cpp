#include "launch/elastic.hpp"

#include <algorithm>
#include <stdexcept>

namespace trainer::launch {

ElasticSlots::ElasticSlots(int world) {
  for (int r = 0; r < world; ++r) slots.push_back(r);
}

int ElasticSlots::exclude(int rank) {
  if (rank < 0 || rank >= size()) throw std::out_of_range("elastic: no rank " + std::to_string(rank) + " to exclude");
  const int slot = slots[static_cast<std::size_t>(rank)];
  slots.erase(slots.begin() + rank);
  return slot;
}

std::string faults_override(const ConfigNode& recipe, const ElasticSlots& slots) {
  if (!recipe.has("faults")) return {};
  std::string out = "faults=[";
  bool first = true;
  for (const auto& item : recipe.at("faults").items()) {
    const int slot = item.has("rank") ? static_cast<int>(item.get_int("rank")) : 0;
    const auto at = std::find(slots.slots.begin(), slots.slots.end(), slot);
    if (at == slots.slots.end()) continue;  // its slot was excluded
    if (!first) out += ", ";
    first = false;
    out += "{";
    bool first_key = true;
    for (const auto& [key, value] : item.entries()) {
      if (!first_key) out += ", ";
      first_key = false;
      out += key;
      out += ": ";
      out += key == "rank" ? std::to_string(at - slots.slots.begin()) : value.text();
    }
    out += "}";
  }
  out += "]";
  return out;
}

}  // namespace trainer::launch
