// UnitShards: how each parameter unit splits into equal, padded shards over the
// data-parallel ranks, and which parameter slices fall in this rank's shard.
#pragma once
#include <cstdint>
#include <vector>

#include "trainer/parameters.hpp"

namespace data_parallel {

struct Slice {
  std::size_t param;           // parameter index
  std::int64_t param_offset;   // first element within the parameter
  std::int64_t shard_offset;   // first element within this rank's shard
  std::int64_t numel;
};

struct UnitShard {
  std::int64_t shard_numel = 0;  // padded: shard_numel * ranks >= unit numel
  std::int64_t begin = 0;        // this rank's first element within the unit
  std::int64_t owned = 0;        // real (unpadded) elements this rank owns, <= shard_numel
  std::vector<Slice> slices;
};

std::vector<UnitShard> plan_shards(const trainer::ParameterStore& params, int ranks, int rank);

}  // namespace data_parallel
