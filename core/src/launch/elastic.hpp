// Elastic restarts: the job continues on fewer ranks after the failure policy excluded one.
// Ranks are renumbered 0..n-1 over the launch slots that remain (the original ranks), and
// the recipe's faults follow their slot: a fault of an excluded slot is gone with it.
#pragma once
#include <string>
#include <vector>

#include "trainer/config.hpp"

namespace trainer::launch {

// The original ranks still in the job, in rank order: slots[r] is the slot of rank r.
struct ElasticSlots {
  std::vector<int> slots;
  explicit ElasticSlots(int world);
  int size() const { return static_cast<int>(slots.size()); }
  // Leaves out the current rank `rank`; returns its slot.
  int exclude(int rank);
};

// The `faults=[...]` override for the current slots, from the full recipe's faults (whose
// ranks are slots); empty when the recipe has no faults.
std::string faults_override(const ConfigNode& recipe, const ElasticSlots& slots);

}  // namespace trainer::launch
