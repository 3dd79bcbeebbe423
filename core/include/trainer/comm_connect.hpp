// Helpers for CommBackend::connect, shared by comm plugins: where this process sits in a
// GroupSpec (checked, with the prefix every error message of the group starts with) and the
// store-key prefix of one connect.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

#include "trainer/comm.hpp"
#include "trainer/store.hpp"

namespace trainer {

struct GroupPlace {
  int rank = 0;                       // this process's rank in the group
  int size = 0;
  std::string where;                  // "<plugin>: group 'dp' (rank 1 of 2)"
  std::chrono::milliseconds timeout;  // the spec's, capped by the plugin's own
};

// Throws CommError (prefixed "<plugin>: ") when the group has no name, this process is not a
// member, or the capped timeout is not positive.
inline GroupPlace place_in_group(const GroupSpec& spec, std::chrono::milliseconds cap, const char* plugin) {
  GroupPlace p;
  std::string where = plugin;
  where += ": group '";
  where += spec.name;
  where += "'";
  if (spec.name.empty()) {
    std::string s = plugin;
    s += ": connect: the group has no name (store keys need one)";
    throw CommError(s);
  }
  const auto it = std::find(spec.ranks.begin(), spec.ranks.end(), spec.global_rank);
  if (it == spec.ranks.end()) {
    where += ": connect: global rank ";
    where += std::to_string(spec.global_rank);
    where += " is not a member";
    throw CommError(where);
  }
  p.rank = static_cast<int>(it - spec.ranks.begin());
  p.size = static_cast<int>(spec.ranks.size());
  where += " (rank ";
  where += std::to_string(p.rank);
  where += " of ";
  where += std::to_string(p.size);
  where += ")";
  // The group's own timeout, capped by the plugin's: a recipe can shorten every wait of the
  // job without the caller knowing about the plugin.
  p.timeout = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(spec.timeout), cap);
  if (p.timeout.count() <= 0) {
    where += ": connect: the timeout must be positive";
    throw CommError(where);
  }
  p.where = std::move(where);
  return p;
}

// "<plugin>/<group>/<generation>/": the generation is this rank's connect count for the
// group, kept in the store, so a reconnect (or a restarted process) never reads an old key.
// Every member connects the same number of times, so all members of one connect agree.
inline std::string connect_prefix(Store& store, const char* plugin, const std::string& group, int global_rank) {
  std::string counter = plugin;
  counter += "/";
  counter += group;
  counter += "/connects/";
  counter += std::to_string(global_rank);
  const std::int64_t generation = store.add(counter, 1);
  std::string prefix = plugin;
  prefix += "/";
  prefix += group;
  prefix += "/";
  prefix += std::to_string(generation);
  prefix += "/";
  return prefix;
}

}  // namespace trainer
