// Silent data corruption check: under replicate, zero1 and zero2 every data-parallel rank
// holds the full parameters between steps, and they are bitwise equal (the same reduced
// gradients, the same update, or an all-gather of the owners' ranges). A digest per
// parameter on each rank, exchanged and compared, finds a replica that differs and names it
// (by majority when there are three or more) and the parameters where it differs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/comm.hpp"
#include "trainer/parameters.hpp"

namespace trainer {

struct ReplicaVerdict {
  bool agree = true;
  // Ranks (indices into the digests) with equal digests: largest group first, ties by
  // their lowest rank.
  std::vector<std::vector<int>> groups;
  // The group holding more than half of the ranks, if one does (always groups[0] then).
  bool has_majority = false;
  std::vector<int> diverging;          // the ranks outside the majority; empty without one
  std::vector<std::size_t> differing;  // parameters whose digest is not the same everywhere
};

// digests[rank][parameter] -> the verdict.
ReplicaVerdict judge_replicas(const std::vector<std::vector<std::uint64_t>>& digests);

// One sentence for the log: who differs from whom, and where. `rank_names[i]` names rank i
// (its global rank); `param_names` the parameters.
std::string describe_verdict(const ReplicaVerdict& verdict, const std::vector<int>& rank_names,
                             const std::vector<std::string>& param_names);

// XXH64 of each parameter's values (every unit must be resident).
std::vector<std::uint64_t> parameter_digests(Backend& backend, const ParameterStore& params);

// Every member's digests, in group-rank order (a collective over `group`).
std::vector<std::vector<std::uint64_t>> exchange_digests(Backend& backend, Communicator& group,
                                                         const std::vector<std::uint64_t>& mine);

}  // namespace trainer
