// Where a rank's slice of a parameter lies in the whole tensor a checkpoint stores.
// A checkpoint holds every parameter (and its optimizer state) whole, in the coordinates of
// the unsplit model, so that it loads under any tensor-parallel degree. A tensor-parallel
// shard (ParameterSpec::global, split_dim, shard_index, shard_count) viewed as
// [outer, extent, inner] is the elements [outer, first .. first + extent, inner] of the
// whole tensor viewed as [outer, global[split_dim], inner]: each of its `outer` rows is one
// contiguous run of the whole tensor, the runs a fixed stride apart. Column-parallel
// weights (split on dim 0) are one run; row-parallel ones one run per output row.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "trainer/parameters.hpp"
#include "trainer/tensor.hpp"

namespace trainer::checkpoint {

// Elements [begin + k*stride, end + k*stride) for k < count of a flattened tensor, in that
// order: one contiguous range when count is 1 (stride is then unused). Runs do not overlap
// (stride >= end - begin).
struct Region {
  std::int64_t begin = 0, end = 0, stride = 0, count = 1;
  std::int64_t run() const { return end - begin; }
  std::int64_t numel() const { return run() * count; }
  bool operator==(const Region&) const = default;
};

// The shape a checkpoint records for a parameter: its unsplit (tp 1) shape. For a shard it
// is the local shape with one dimension `shard_count` times larger, the one that makes it a
// view of `global` (qkv's local [3C/tp, C] of global [3, C, C] is [3C, C]).
Shape whole_shape(const ParameterSpec& spec);

// The same elements in the same order: equal element counts, and one shape is the other
// with some adjacent dimensions merged ([3C, C] and [3, C, C]; [C] and [1, C]).
bool same_layout(const Shape& a, const Shape& b);

// Where local elements [a, b) of `spec` (of its flattened local shape) lie in the whole
// tensor, in local order: one region for a whole parameter; for a shard at most three (a
// partial row, whole rows, a partial row).
std::vector<Region> whole_regions(const ParameterSpec& spec, std::int64_t a, std::int64_t b);

// Calls fn(at_want, at_have, n) for each maximal element range that both regions hold:
// `at_want` counts elements of `want` in its order, `at_have` elements of `have` in its.
void for_each_overlap(const Region& want, const Region& have,
                      const std::function<void(std::int64_t, std::int64_t, std::int64_t)>& fn);

}  // namespace trainer::checkpoint
