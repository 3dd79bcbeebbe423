#include "checkpoint/slice_map.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

namespace trainer::checkpoint {
namespace {

// Where the flattened shape may be cut between dimensions: the products of its leading dims.
std::set<std::int64_t> cuts(const Shape& s) {
  std::set<std::int64_t> out;
  std::int64_t p = 1;
  for (std::size_t d = 0; d + 1 < s.size(); ++d) out.insert(p *= s[d]);
  return out;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

bool same_layout(const Shape& a, const Shape& b) {
  if (shape_numel(a) != shape_numel(b)) return false;
  const auto ca = cuts(a), cb = cuts(b);
  return std::includes(ca.begin(), ca.end(), cb.begin(), cb.end()) ||
         std::includes(cb.begin(), cb.end(), ca.begin(), ca.end());
}

Shape whole_shape(const ParameterSpec& spec) {
  if (spec.global.empty()) return spec.shape;
  for (std::size_t d = 0; d < spec.shape.size(); ++d) {
    Shape u = spec.shape;
    u[d] *= spec.shard_count;
    if (same_layout(u, spec.global)) return u;
  }
  return spec.global;
}

std::vector<Region> whole_regions(const ParameterSpec& spec, std::int64_t a, std::int64_t b) {
  const std::int64_t n = shape_numel(spec.shape);
  if (a < 0 || b > n || a > b) {
    throw std::out_of_range("parameter '" + spec.name + "': elements [" + std::to_string(a) + ", " +
                            std::to_string(b) + ") outside its " + std::to_string(n));
  }
  if (a == b) return {};
  if (spec.global.empty()) return {Region{a, b}};
  const auto d = static_cast<std::size_t>(spec.split_dim);
  std::int64_t outer = 1, inner = 1;
  for (std::size_t k = 0; k < d; ++k) outer *= spec.global[k];
  for (std::size_t k = d + 1; k < spec.global.size(); ++k) inner *= spec.global[k];
  const std::int64_t extent = spec.global[d] / spec.shard_count;
  if (outer * extent * inner != n) {
    throw std::logic_error("parameter '" + spec.name + "': shape " + shape_string(spec.shape) + " is not one of " +
                           std::to_string(spec.shard_count) + " parts of " + shape_string(spec.global));
  }
  const std::int64_t local_row = extent * inner, whole_row = spec.global[d] * inner;
  const std::int64_t first = extent * spec.shard_index * inner;
  const auto at = [&](std::int64_t row) { return row * whole_row + first; };  // whole index of a local row's start
  std::int64_t ra = a / local_row, oa = a % local_row;
  const std::int64_t rb = b / local_row, ob = b % local_row;
  if (ra == rb) return {Region{at(ra) + oa, at(ra) + ob}};
  std::vector<Region> out;
  if (oa != 0) {
    out.push_back(Region{at(ra) + oa, at(ra) + local_row});
    ++ra;
  }
  if (rb > ra) {
    const std::int64_t rows = rb - ra;
    out.push_back(rows == 1 ? Region{at(ra), at(ra) + local_row} : Region{at(ra), at(ra) + local_row, whole_row, rows});
  }
  if (ob != 0) out.push_back(Region{at(rb), at(rb) + ob});
  return out;
}

void for_each_overlap(const Region& want, const Region& have,
                      const std::function<void(std::int64_t, std::int64_t, std::int64_t)>& fn) {
  const std::int64_t wr = want.run(), hr = have.run();
  if (wr <= 0 || hr <= 0) return;
  for (std::int64_t kw = 0; kw < want.count; ++kw) {
    const std::int64_t ws = want.begin + kw * want.stride, we = ws + wr;
    // The runs of `have` that can touch [ws, we): start < we and start + hr > ws.
    std::int64_t k0 = 0, k1 = have.count - 1;
    if (have.count > 1) {
      k0 = std::max<std::int64_t>(0, floor_div(ws - have.begin - hr, have.stride) + 1);
      k1 = std::min<std::int64_t>(have.count - 1, floor_div(we - 1 - have.begin, have.stride));
    }
    for (std::int64_t kh = k0; kh <= k1; ++kh) {
      const std::int64_t hs = have.begin + kh * have.stride;
      const std::int64_t lo = std::max(ws, hs), hi = std::min(we, hs + hr);
      if (lo < hi) fn(kw * wr + (lo - ws), kh * hr + (lo - hs), hi - lo);
    }
  }
}

}  // namespace trainer::checkpoint
