#include "pipeline/stage_plan.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace trainer::pipeline {

std::string StagePlan::describe() const {
  std::string out;
  for (int c = 0; c < chunks(); ++c) {
    if (c > 0) out += " | ";
    out += end(c) - begin(c) == 1 ? fmt::format("{}", begin(c)) : fmt::format("{}-{}", begin(c), end(c) - 1);
  }
  return out;
}

StagePlan balance_by_parameters(const std::vector<ParameterSpec>& specs, int blocks, int chunks) {
  if (chunks < 1 || blocks < chunks) {
    throw std::invalid_argument(fmt::format("{} blocks cannot be split into {} pipeline chunks", blocks, chunks));
  }
  std::vector<double> weight(static_cast<std::size_t>(blocks), 0.0);
  for (const auto& s : specs) {
    if (s.block >= 0 && s.block < blocks) weight[static_cast<std::size_t>(s.block)] += static_cast<double>(shape_numel(s.shape));
  }
  std::vector<double> prefix(static_cast<std::size_t>(blocks) + 1, 0.0);
  for (int b = 0; b < blocks; ++b) prefix[static_cast<std::size_t>(b) + 1] = prefix[static_cast<std::size_t>(b)] + weight[static_cast<std::size_t>(b)];
  const auto sum = [&](int a, int b) { return prefix[static_cast<std::size_t>(b)] - prefix[static_cast<std::size_t>(a)]; };
  // best[k][b]: the smallest largest-chunk over splits of blocks [0, b) into k chunks.
  const double inf = std::numeric_limits<double>::infinity();
  const auto K = static_cast<std::size_t>(chunks), B = static_cast<std::size_t>(blocks);
  std::vector<std::vector<double>> best(K + 1, std::vector<double>(B + 1, inf));
  std::vector<std::vector<int>> cut(K + 1, std::vector<int>(B + 1, 0));
  best[0][0] = 0;
  for (std::size_t k = 1; k <= K; ++k) {
    for (int b = static_cast<int>(k); b <= blocks; ++b) {
      // Later cut points first: on ties the last chunk takes more blocks.
      for (int a = b - 1; a >= static_cast<int>(k) - 1; --a) {
        const double v = std::max(best[k - 1][static_cast<std::size_t>(a)], sum(a, b));
        if (v < best[k][static_cast<std::size_t>(b)]) {
          best[k][static_cast<std::size_t>(b)] = v;
          cut[k][static_cast<std::size_t>(b)] = a;
        }
      }
    }
  }
  StagePlan plan;
  plan.first.assign(K + 1, 0);
  plan.first[K] = blocks;
  for (std::size_t k = K, b = B; k > 0; --k) {
    b = static_cast<std::size_t>(cut[k][b]);
    plan.first[k - 1] = static_cast<int>(b);
  }
  return plan;
}

StagePlan explicit_plan(const std::vector<int>& boundaries, int blocks, int chunks) {
  if (static_cast<int>(boundaries.size()) != chunks - 1) {
    throw std::invalid_argument(fmt::format("pipeline.stages lists {} boundaries; {} chunks need {} (the first block "
                                            "of every chunk but the first)",
                                            boundaries.size(), chunks, chunks - 1));
  }
  StagePlan plan;
  plan.first.push_back(0);
  for (int b : boundaries) {
    if (b <= plan.first.back() || b >= blocks) {
      throw std::invalid_argument(fmt::format("pipeline.stages must increase strictly between 0 and {} (the block "
                                              "count), found {} after {}",
                                              blocks, b, plan.first.back()));
    }
    plan.first.push_back(b);
  }
  plan.first.push_back(blocks);
  return plan;
}

std::size_t embedding_parameter_count(const std::vector<ParameterSpec>& all) {
  std::size_t n = 0;
  while (n < all.size() && all[n].block < 0) ++n;
  return n;
}

std::vector<ParameterSpec> stage_parameters(const std::vector<ParameterSpec>& all, const StagePlan& plan,
                                            const PipelineSchedule& schedule, int rank, bool tied_head) {
  const bool first = schedule.rank_of(0) == rank;
  const bool last = schedule.rank_of(schedule.chunks() - 1) == rank;
  std::vector<bool> mine(static_cast<std::size_t>(plan.first.back()), false);
  for (int c = 0; c < plan.chunks(); ++c) {
    if (schedule.rank_of(c) != rank) continue;
    for (int b = plan.begin(c); b < plan.end(c); ++b) mine[static_cast<std::size_t>(b)] = true;
  }
  const std::size_t leading = embedding_parameter_count(all);
  std::vector<ParameterSpec> out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& s = all[i];
    if (s.block >= 0) {
      if (s.block < static_cast<int>(mine.size()) && mine[static_cast<std::size_t>(s.block)]) out.push_back(s);
    } else if (i < leading) {
      if (first || (last && tied_head)) out.push_back(s);
    } else if (last) {
      out.push_back(s);
    }
  }
  return out;
}

}  // namespace trainer::pipeline
