#include "engine/replica_check.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "checkpoint/checksum.hpp"

namespace trainer {
namespace {

std::string rank_list(const std::vector<int>& ranks, const std::vector<int>& names) {
  std::string s;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (i > 0) s += i + 1 == ranks.size() ? (ranks.size() == 2 ? " and " : ", and ") : ", ";
    s += std::to_string(names.at(static_cast<std::size_t>(ranks[i])));
  }
  return s;
}

std::string ranks_word(const std::vector<int>& ranks) { return ranks.size() == 1 ? "rank" : "ranks"; }

}  // namespace

ReplicaVerdict judge_replicas(const std::vector<std::vector<std::uint64_t>>& digests) {
  ReplicaVerdict v;
  const int n = static_cast<int>(digests.size());
  for (int r = 0; r < n; ++r) {
    auto same = std::find_if(v.groups.begin(), v.groups.end(), [&](const std::vector<int>& g) {
      return digests[static_cast<std::size_t>(g.front())] == digests[static_cast<std::size_t>(r)];
    });
    if (same == v.groups.end()) {
      v.groups.push_back({r});
    } else {
      same->push_back(r);
    }
  }
  std::stable_sort(v.groups.begin(), v.groups.end(),
                   [](const std::vector<int>& a, const std::vector<int>& b) { return a.size() > b.size(); });
  v.agree = v.groups.size() <= 1;
  if (v.agree) return v;
  v.has_majority = 2 * v.groups.front().size() > static_cast<std::size_t>(n);
  if (v.has_majority) {
    for (std::size_t g = 1; g < v.groups.size(); ++g) {
      v.diverging.insert(v.diverging.end(), v.groups[g].begin(), v.groups[g].end());
    }
    std::sort(v.diverging.begin(), v.diverging.end());
  }
  const std::size_t params = digests.front().size();
  for (std::size_t p = 0; p < params; ++p) {
    for (int r = 1; r < n; ++r) {
      if (digests[static_cast<std::size_t>(r)].at(p) != digests.front().at(p)) {
        v.differing.push_back(p);
        break;
      }
    }
  }
  return v;
}

std::string describe_verdict(const ReplicaVerdict& v, const std::vector<int>& rank_names,
                             const std::vector<std::string>& param_names) {
  if (v.agree) return "the replicas agree";
  std::string where;
  constexpr std::size_t kNamed = 3;
  for (std::size_t i = 0; i < v.differing.size() && i < kNamed; ++i) {
    if (i > 0) where += ", ";
    where += "'" + param_names.at(v.differing[i]) + "'";
  }
  if (v.differing.size() > kNamed) where += fmt::format(" and {} more", v.differing.size() - kNamed);
  const std::string in = where.empty() ? std::string() : " in " + where;
  if (v.has_majority) {
    return fmt::format("{} {} {} from the majority ({} {}){}", ranks_word(v.diverging), rank_list(v.diverging, rank_names),
                       v.diverging.size() == 1 ? "diverges" : "diverge", ranks_word(v.groups.front()),
                       rank_list(v.groups.front(), rank_names), in);
  }
  if (v.groups.size() == 2 && v.groups[0].size() == 1 && v.groups[1].size() == 1) {
    return fmt::format("ranks {} and {} disagree{}; with two replicas there is no majority to tell which one diverged",
                       rank_names.at(static_cast<std::size_t>(v.groups[0][0])),
                       rank_names.at(static_cast<std::size_t>(v.groups[1][0])), in);
  }
  std::string groups;
  for (std::size_t g = 0; g < v.groups.size(); ++g) {
    if (g > 0) groups += " | ";
    groups += fmt::format("{} {}", ranks_word(v.groups[g]), rank_list(v.groups[g], rank_names));
  }
  return fmt::format("no majority: the replicas split into {}{}", groups, in);
}

std::vector<std::uint64_t> parameter_digests(Backend& backend, const ParameterStore& params) {
  std::vector<std::uint64_t> out;
  out.reserve(params.size());
  std::vector<float> host;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Tensor t = params.value(i);
    if (!t) throw std::logic_error("replica check: parameter '" + params.spec(i).name + "' is not resident");
    host.resize(static_cast<std::size_t>(t.numel()));
    backend.copy_to_host(host.data(), t);
    out.push_back(checkpoint::xxh64(host.data(), host.size() * sizeof(float)));
  }
  return out;
}

std::vector<std::vector<std::uint64_t>> exchange_digests(Backend& backend, Communicator& group,
                                                         const std::vector<std::uint64_t>& mine) {
  // Four 16-bit pieces per digest, each exact in an f32: the collectives move floats.
  constexpr int kPieces = 4;
  const std::size_t per_rank = mine.size() * kPieces;
  std::vector<float> encoded(per_rank);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    for (int k = 0; k < kPieces; ++k) {
      encoded[i * kPieces + static_cast<std::size_t>(k)] = static_cast<float>((mine[i] >> (16 * k)) & 0xffffu);
    }
  }
  const int n = group.size();
  Tensor in = backend.allocate({static_cast<std::int64_t>(per_rank)}, DType::f32);
  Tensor out = backend.allocate({static_cast<std::int64_t>(per_rank) * n}, DType::f32);
  backend.copy_from_host(in, encoded.data());
  group.all_gather(out, in)->wait();
  std::vector<float> all(per_rank * static_cast<std::size_t>(n));
  backend.copy_to_host(all.data(), out);
  std::vector<std::vector<std::uint64_t>> digests(static_cast<std::size_t>(n), std::vector<std::uint64_t>(mine.size()));
  for (std::size_t r = 0; r < static_cast<std::size_t>(n); ++r) {
    for (std::size_t i = 0; i < mine.size(); ++i) {
      std::uint64_t d = 0;
      for (int k = 0; k < kPieces; ++k) {
        d |= static_cast<std::uint64_t>(all[r * per_rank + i * kPieces + static_cast<std::size_t>(k)]) << (16 * k);
      }
      digests[r][i] = d;
    }
  }
  return digests;
}

}  // namespace trainer
