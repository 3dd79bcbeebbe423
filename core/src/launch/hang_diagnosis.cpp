#include "launch/hang_diagnosis.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "comm/watchdog.hpp"

namespace trainer::launch {

namespace {

using comm::FlightEntry;
using comm::FlightRecord;

bool is_collective(const FlightEntry& e) { return e.op != "send" && e.op != "recv"; }

std::string rank_list(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (i) s += i + 1 == ranks.size() ? " and " : ", ";
    s += std::to_string(ranks[i]);
  }
  return s;
}

// The first operation of this record that never completed (issued or failed), if any.
const FlightEntry* first_unfinished(const FlightRecord& r) {
  for (const auto& e : r.entries) {
    if (e.state == FlightEntry::State::issued || e.state == FlightEntry::State::failed) return &e;
  }
  return nullptr;
}

// The highest collective sequence number this rank entered in `group` (0: none recorded).
std::uint64_t entered(const FlightRecord& r, const std::string& group, const FlightEntry** last) {
  std::uint64_t seq = 0;
  for (const auto& e : r.entries) {
    if (e.group == group && is_collective(e) && e.seq >= seq) {
      seq = e.seq;
      *last = &e;
    }
  }
  return seq;
}

}  // namespace

std::string diagnose_collectives(const std::map<int, FlightRecord>& records, int world) {
  std::vector<int> missing;
  for (int r = 0; r < world; ++r) {
    if (!records.count(r)) missing.push_back(r);
  }
  // The collective the job is stuck in: the earliest unfinished one of any rank.
  const FlightEntry* stuck = nullptr;
  for (const auto& [rank, rec] : records) {
    const FlightEntry* e = first_unfinished(rec);
    if (e && is_collective(*e) && (!stuck || e->seq < stuck->seq)) stuck = e;
  }
  std::string out;
  if (!stuck) {
    out = "diagnosis: no rank was waiting in a collective";
    for (const auto& [rank, rec] : records) {
      if (const FlightEntry* e = first_unfinished(rec)) {
        out += fmt::format("; rank {} was waiting in {}", rank, comm::describe(*e));
      }
    }
    if (!missing.empty()) out += fmt::format("; {} left no flight record", rank_list(missing));
    return out;
  }
  const std::string& group = stuck->group;
  const std::uint64_t k = stuck->seq;
  std::vector<int> absent, waiting, failed, done;
  std::vector<std::string> absent_detail;
  double longest_wait = 0;
  std::string failure;
  for (const auto& [rank, rec] : records) {
    const FlightEntry* last = nullptr;
    const std::uint64_t seq = entered(rec, group, &last);
    if (seq < k) {
      absent.push_back(rank);
      absent_detail.push_back(last ? fmt::format("rank {}'s last collective there was {} #{} at step {} ({}), and "
                                                 "it was at step {} when it dumped",
                                                 rank, last->op, last->seq, last->step, comm::state_name(last->state),
                                                 rec.step)
                                   : fmt::format("rank {} had entered no collective of group '{}'", rank, group));
      continue;
    }
    const FlightEntry* at_k = nullptr;
    for (const auto& e : rec.entries) {
      if (e.group == group && is_collective(e) && e.seq == k) at_k = &e;
    }
    if (!at_k || at_k->state == FlightEntry::State::completed) {
      done.push_back(rank);
    } else if (at_k->state == FlightEntry::State::failed) {
      failed.push_back(rank);
      if (failure.empty()) failure = at_k->error;
      longest_wait = std::max(longest_wait, at_k->ended_s - at_k->issued_s);
    } else {
      waiting.push_back(rank);
      longest_wait = std::max(longest_wait, rec.now_s - at_k->issued_s);
    }
  }
  std::vector<int> in_it = waiting;
  in_it.insert(in_it.end(), failed.begin(), failed.end());
  std::sort(in_it.begin(), in_it.end());
  const std::string what = comm::describe(*stuck);
  if (!absent.empty()) {
    out = fmt::format("diagnosis: {} never entered {} #{} of group '{}' at step {}; ", rank_list(absent), stuck->op,
                      k, group, stuck->step);
    out += fmt::format("{} {} waiting in it ({}) for up to {:.1f} s", rank_list(in_it),
                       in_it.size() == 1 ? "was" : "were", what, longest_wait);
    for (const auto& d : absent_detail) {
      out += "; ";
      out += d;
    }
  } else if (!missing.empty()) {
    out = fmt::format("diagnosis: {} left no flight record (killed, or could not dump); {} {} waiting in {} for up "
                      "to {:.1f} s",
                      rank_list(missing), rank_list(in_it), in_it.size() == 1 ? "was" : "were", what, longest_wait);
  } else {
    out = fmt::format("diagnosis: every rank entered {} but {} did not complete it (a peer stuck inside it, or the "
                      "network)",
                      what, rank_list(in_it));
  }
  if (!done.empty()) out += fmt::format("; {} completed it", rank_list(done));
  if (!missing.empty() && !absent.empty()) out += fmt::format("; {} left no flight record", rank_list(missing));
  if (!failure.empty()) {
    out += "; first error: ";
    out += failure;
  }
  return out;
}

}  // namespace trainer::launch
