#include "unit_shards.hpp"

#include <algorithm>

namespace data_parallel {

std::vector<UnitShard> plan_shards(const trainer::ParameterStore& params, int ranks, int rank) {
  std::vector<UnitShard> plan;
  for (const auto& unit : params.units()) {
    UnitShard s;
    s.shard_numel = (unit.numel + ranks - 1) / ranks;
    s.begin = std::min<std::int64_t>(unit.numel, s.shard_numel * rank);
    const std::int64_t end = std::min<std::int64_t>(unit.numel, s.begin + s.shard_numel);
    s.owned = end - s.begin;
    for (std::size_t i = unit.first; i < unit.last; ++i) {
      const std::int64_t p0 = params.offset(i) - unit.offset;
      const std::int64_t p1 = p0 + trainer::shape_numel(params.spec(i).shape);
      const std::int64_t lo = std::max(p0, s.begin), hi = std::min(p1, end);
      if (lo < hi) s.slices.push_back({i, lo - p0, lo - s.begin, hi - lo});
    }
    plan.push_back(std::move(s));
  }
  return plan;
}

}  // namespace data_parallel
