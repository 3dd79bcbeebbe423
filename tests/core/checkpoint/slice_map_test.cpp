// The slice map: where a tensor-parallel shard's elements (and a dp range of them) lie in
// the whole tensor, checked against a brute-force walk of the whole tensor; overlaps of
// strided regions; and a checkpoint written by tp 2 x dp 2 ranks read back at tp 3 and tp 1.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <thread>

#include "checkpoint/checkpoint_reader.hpp"
#include "checkpoint/checkpoint_writer.hpp"
#include "checkpoint/slice_map.hpp"
#include "checkpoint_helpers.hpp"
#include "support/recipes.hpp"
#include "trainer/tensor_parallel.hpp"

using namespace trainer;
using namespace trainer::checkpoint;

namespace {

constexpr std::int64_t C = 6, V = 12;

// The model's parameters at one tp degree, as the gpt plugin declares them: qkv split by
// heads ([3C, C] seen as [3, C, C]), a row-parallel projection (input columns), a
// vocabulary-parallel embedding (rows), and a norm every rank holds whole.
std::vector<ParameterSpec> specs_at(int tp, int r) {
  const auto spec = [](const char* name, Shape shape) {
    ParameterSpec s;
    s.name = name;
    s.shape = std::move(shape);
    return s;
  };
  return {shard_spec(spec("qkv", {3 * C, C}), {3, C, C}, 1, {3 * C / tp, C}, r, tp),
          shard_spec(spec("proj", {C, C}), {C, C}, 1, {C, C / tp}, r, tp),
          shard_spec(spec("wte", {V, C}), {V, C}, 0, {V / tp, C}, r, tp),
          replicated_spec(spec("ln", {C}), tp)};
}

// Brute force: the whole tensor's flat indices of the shard, in the shard's order.
std::vector<std::int64_t> shard_indices(const ParameterSpec& s) {
  std::vector<std::int64_t> out;
  if (s.global.empty()) {
    for (std::int64_t i = 0; i < shape_numel(s.shape); ++i) out.push_back(i);
    return out;
  }
  const auto d = static_cast<std::size_t>(s.split_dim);
  const std::int64_t extent = s.global[d] / s.shard_count, first = extent * s.shard_index;
  std::vector<std::int64_t> idx(s.global.size(), 0);
  for (std::int64_t g = 0; g < shape_numel(s.global); ++g) {
    std::int64_t rest = g;
    for (std::size_t k = s.global.size(); k-- > 0;) {
      idx[k] = rest % s.global[k];
      rest /= s.global[k];
    }
    if (idx[d] >= first && idx[d] < first + extent) out.push_back(g);
  }
  return out;
}

std::vector<std::int64_t> expand(const std::vector<Region>& regions) {
  std::vector<std::int64_t> out;
  for (const auto& r : regions) {
    for (std::int64_t k = 0; k < r.count; ++k) {
      for (std::int64_t e = r.begin; e < r.end; ++e) out.push_back(e + k * r.stride);
    }
  }
  return out;
}

float value_of(std::size_t tensor, std::int64_t element) { return 1000.0f * static_cast<float>(tensor) + element; }

// Rank r of `ranks`' equal split of n elements (the last may be short or empty).
std::pair<std::int64_t, std::int64_t> split(std::int64_t n, int r, int ranks) {
  const std::int64_t s = (n + ranks - 1) / ranks;
  return {std::min(n, s * r), std::min(n, s * (r + 1))};
}

}  // namespace

TEST_CASE("a shard's whole shape and shapes of the same layout", "[slice_map]") {
  const auto s = specs_at(2, 1);
  CHECK(whole_shape(s[0]) == Shape{3 * C, C});
  CHECK(whole_shape(s[1]) == Shape{C, C});
  CHECK(whole_shape(s[2]) == Shape{V, C});
  CHECK(whole_shape(s[3]) == Shape{C});
  CHECK(same_layout({18, 6}, {3, 6, 6}));
  CHECK(same_layout({3, 6, 6}, {18, 6}));
  CHECK(same_layout({6}, {1, 6}));
  CHECK_FALSE(same_layout({6, 18}, {3, 6, 6}));
  CHECK_FALSE(same_layout({6, 6}, {6, 7}));
}

TEST_CASE("every range of every shard maps onto the elements a brute-force walk finds", "[slice_map]") {
  for (int tp : {1, 2, 3}) {
    for (int r = 0; r < tp; ++r) {
      for (const auto& s : specs_at(tp, r)) {
        const auto all = shard_indices(s);
        const auto n = static_cast<std::int64_t>(all.size());
        REQUIRE(n == shape_numel(s.shape));
        for (std::int64_t a = 0; a <= n; ++a) {
          for (std::int64_t b = a; b <= n; ++b) {
            const auto regions = whole_regions(s, a, b);
            CHECK(regions.size() <= 3);
            const std::vector<std::int64_t> want(all.begin() + a, all.begin() + b);
            if (expand(regions) != want) FAIL(s.name << " tp " << tp << " rank " << r << " [" << a << ", " << b << ")");
          }
        }
      }
    }
  }
  CHECK_THROWS_AS(whole_regions(specs_at(2, 0)[0], 0, 1000), std::out_of_range);
}

TEST_CASE("overlaps of strided regions are exactly the common elements", "[slice_map]") {
  std::mt19937 gen(5);
  const auto random_region = [&] {
    std::uniform_int_distribution<std::int64_t> small(1, 6), start(0, 20);
    Region r;
    r.begin = start(gen);
    r.end = r.begin + small(gen);
    r.count = small(gen);
    r.stride = r.count > 1 ? r.run() + small(gen) - 1 : 0;
    return r;
  };
  for (int trial = 0; trial < 2000; ++trial) {
    const Region want = random_region(), have = random_region();
    const auto w = expand({want}), h = expand({have});
    std::vector<float> got(w.size(), -1.0f);
    std::int64_t total = 0;
    for_each_overlap(want, have, [&](std::int64_t at_want, std::int64_t at_have, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i) {
        REQUIRE(w[static_cast<std::size_t>(at_want + i)] == h[static_cast<std::size_t>(at_have + i)]);
        got[static_cast<std::size_t>(at_want + i)] = 1.0f;
      }
      total += n;
    });
    std::int64_t common = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const bool in_have = std::find(h.begin(), h.end(), w[i]) != h.end();
      common += in_have;
      CHECK((got[i] == 1.0f) == in_have);
    }
    CHECK(total == common);
  }
}

TEST_CASE("a checkpoint written at tp 2 x dp 2 (fsdp-like ranges) reads back at tp 3 and tp 1", "[slice_map]") {
  test::RecipeDir tmp("ckpt-slices");
  const auto dir = tmp.path() / "ckpt";
  test::MemoryStore store;
  constexpr int tp = 2, dp = 2, world = tp * dp;
  std::vector<std::thread> ranks;
  std::vector<std::exception_ptr> errors(world);
  for (int rank = 0; rank < world; ++rank) {
    ranks.emplace_back([&, rank] {
      try {
        const int t = rank % tp, d = rank / tp;
        WriterOptions o;
        o.dir = dir;
        o.rank = rank;
        o.world = world;
        o.store = &store;
        o.store_prefix = "checkpoint/1";
        o.nonce = "test";
        o.header.world = world;
        o.header.dp = dp;
        o.header.tp = tp;
        CheckpointWriter w(o);
        auto& snap = w.begin_snapshot();
        snap = {};
        const auto specs = specs_at(tp, t);
        for (std::size_t i = 0; i < specs.size(); ++i) {
          const auto& s = specs[i];
          if (s.global.empty() && t != 0) continue;  // whole on every tp rank: tp rank 0 writes it
          const auto [a, b] = split(shape_numel(s.shape), d, dp);
          const auto all = shard_indices(s);
          for (const auto& r : whole_regions(s, a, b)) {
            snap.slices.push_back({"params/" + s.name, whole_shape(s), r.begin, r.end, r.stride, r.count});
          }
          for (auto e = a; e < b; ++e) snap.data.push_back(value_of(i, all[static_cast<std::size_t>(e)]));
        }
        w.submit(3);
        w.wait();
      } catch (...) {
        errors[static_cast<std::size_t>(rank)] = std::current_exception();
      }
    });
  }
  for (auto& th : ranks) th.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  std::vector<std::string> warnings;
  const auto found = find_latest_good(dir, warnings);  // verifies every chunk's checksum
  REQUIRE(found);
  CHECK(found->manifest.tp == 2);
  CHECK(found->manifest.dp == 2);
  const auto* qkv = found->manifest.find("params/qkv");
  REQUIRE(qkv);
  CHECK(qkv->shape == Shape{3 * C, C});
  CHECK(std::any_of(found->manifest.find("params/proj")->chunks.begin(),
                    found->manifest.find("params/proj")->chunks.end(), [](const Chunk& c) { return c.count > 1; }));

  ShardFiles files(found->dir);
  for (int new_tp : {3, 1}) {
    for (int r = 0; r < new_tp; ++r) {
      const auto specs = specs_at(new_tp, r);
      for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto& s = specs[i];
        const auto all = shard_indices(s);
        for (int d = 0; d < 3; ++d) {  // three dp ranks' ranges of the new shard
          const auto [a, b] = split(shape_numel(s.shape), d, 3);
          std::vector<float> got(static_cast<std::size_t>(b - a), -1.0f), want;
          std::size_t at = 0;
          for (const auto& region : whole_regions(s, a, b)) {
            read_region(files, found->manifest, "params/" + s.name, region, got.data() + at, true);
            at += static_cast<std::size_t>(region.numel());
          }
          for (auto e = a; e < b; ++e) want.push_back(value_of(i, all[static_cast<std::size_t>(e)]));
          if (got != want) FAIL(s.name << " at tp " << new_tp << " rank " << r << " dp range [" << a << ", " << b << ")");
        }
      }
    }
  }
  std::vector<float> whole(static_cast<std::size_t>(V * C));
  read_range(found->dir, found->manifest, "params/wte", 0, V * C, whole.data());
  for (std::int64_t e = 0; e < V * C; ++e) CHECK(whole[static_cast<std::size_t>(e)] == value_of(2, e));
}

TEST_CASE("strided chunks survive the manifest round trip and must tile their tensor", "[slice_map]") {
  Manifest m;
  m.world = 2;
  m.tp = 2;
  m.tensors.push_back({"params/proj", DType::f32, {4, 4}, {}});
  m.tensors[0].chunks = {{"rank-00000.bin", 0, 0, 2, 1, 4, 4}, {"rank-00001.bin", 0, 2, 4, 2, 4, 4}};
  const Manifest back = parse_manifest(to_json(m), "test");
  CHECK(back.tp == 2);
  CHECK(back.dp == 1);
  REQUIRE(back.tensors.size() == 1);
  CHECK(back.tensors[0].chunks[1].count == 4);
  CHECK(back.tensors[0].chunks[1].stride == 4);
  CHECK(back.tensors[0].chunks[1].numel() == 8);
  // A format-1 manifest (before tp and pp: no mesh, contiguous chunks) still reads, as dp only.
  Manifest v1 = m;
  v1.tensors[0].chunks = {{"rank-00000.bin", 0, 0, 16, 1}};
  std::string text = to_json(v1);
  text.replace(text.find(kFormat), std::string(kFormat).size(), kFormatV1);
  text.erase(text.find("  \"mesh\""), text.find('\n', text.find("  \"mesh\"")) + 1 - text.find("  \"mesh\""));
  REQUIRE(text.find("mesh") == std::string::npos);
  const Manifest old = parse_manifest(text, "v1.json");
  CHECK(old.format == kFormatV1);
  CHECK(old.dp == 2);
  CHECK(old.tp == 1);
  CHECK(old.pp == 1);
  m.tensors[0].chunks[1].count = 3;  // the last row's columns 2-3 are missing
  CHECK_THROWS_WITH(parse_manifest(to_json(m), "x.json"), Catch::Contains("params/proj") && Catch::Contains("cover"));
  m.tensors[0].chunks[1] = {"rank-00001.bin", 0, 2, 4, 2, 1, 4};  // runs overlapping each other
  CHECK_THROWS_AS(parse_manifest(to_json(m), "x.json"), ManifestError);
}
