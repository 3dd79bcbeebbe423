// Sampling: windows are a pure function of (seed, step, global index); evaluation walks
// the val shard in order.
#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <vector>

#include "data/sampler.hpp"
#include "data/token_shard.hpp"
#include "temp_dir.hpp"

using namespace trainer::data;
using trainer::data::test::TempDir;

namespace {

// token[i] = i, so a window's first input is its start position.
TokenShard counting_shard(const TempDir& dir, std::size_t n) {
  std::vector<std::uint16_t> tokens(n);
  for (std::size_t i = 0; i < n; ++i) tokens[i] = static_cast<std::uint16_t>(i);
  const auto path = dir / ("count" + std::to_string(n) + ".bin");
  write_token_shard(path, tokens);
  return TokenShard(path);
}

struct Batch {
  std::vector<std::int32_t> inputs, targets;
  Batch(int rows, int seq_len)
      : inputs(static_cast<std::size_t>(rows * seq_len)), targets(static_cast<std::size_t>(rows * seq_len)) {}
};

}  // namespace

TEST_CASE("a window depends only on (seed, step, index)", "[data][sampler]") {
  TempDir dir("sampler");
  const TokenShard shard = counting_shard(dir, 10'000);
  const BatchSampler a(shard, 32, 42);
  const BatchSampler b(shard, 32, 42);
  Batch x(1, 32), y(1, 32);
  for (std::int64_t step : {0, 1, 1000}) {
    for (std::int64_t index : {0, 5, 4095}) {
      a.sample(step, index, x.inputs, x.targets);
      b.sample(step, index, y.inputs, y.targets);
      REQUIRE(x.inputs == y.inputs);
      REQUIRE(x.targets == y.targets);
      REQUIRE(a.window_start(step, index) == b.window_start(step, index));
    }
  }
  // Order of calls does not matter: no hidden state.
  const auto first = a.window_start(3, 7);
  a.sample(9, 9, x.inputs, x.targets);
  REQUIRE(a.window_start(3, 7) == first);
}

TEST_CASE("different steps, indices or seeds give different windows", "[data][sampler]") {
  TempDir dir("sampler");
  const TokenShard shard = counting_shard(dir, 50'000);
  const BatchSampler s(shard, 64, 1);
  const BatchSampler other_seed(shard, 64, 2);
  int same_step = 0, same_seed = 0;
  std::set<std::int64_t> starts;
  for (std::int64_t i = 0; i < 256; ++i) {
    same_step += s.window_start(0, i) == s.window_start(1, i);
    same_seed += s.window_start(0, i) == other_seed.window_start(0, i);
    starts.insert(s.window_start(0, i));
  }
  REQUIRE(same_step <= 2);  // chance collisions only: ~256/50k expected
  REQUIRE(same_seed <= 2);
  REQUIRE(starts.size() >= 250);
}

TEST_CASE("targets are the inputs shifted by one token", "[data][sampler]") {
  TempDir dir("sampler");
  const TokenShard shard = counting_shard(dir, 5'000);
  const BatchSampler s(shard, 16, 7);
  Batch x(1, 16);
  for (std::int64_t index = 0; index < 50; ++index) {
    s.sample(3, index, x.inputs, x.targets);
    const std::int64_t start = s.window_start(3, index);
    REQUIRE(start >= 0);
    REQUIRE(start + 16 + 1 <= 5'000);
    for (int t = 0; t < 16; ++t) {
      REQUIRE(x.inputs[static_cast<std::size_t>(t)] == start + t);
      REQUIRE(x.targets[static_cast<std::size_t>(t)] == start + t + 1);
    }
  }
}

TEST_CASE("windows do not depend on how indices are split into micro-batches", "[data][sampler]") {
  TempDir dir("sampler");
  const TokenShard shard = counting_shard(dir, 20'000);
  const BatchSampler s(shard, 24, 123);
  Batch whole(8, 24), lo(4, 24), hi(4, 24), one(1, 24);
  s.fill_micro_batch(5, 0, 8, whole.inputs, whole.targets);
  s.fill_micro_batch(5, 0, 4, lo.inputs, lo.targets);
  s.fill_micro_batch(5, 4, 4, hi.inputs, hi.targets);
  std::vector<std::int32_t> joined = lo.inputs;
  joined.insert(joined.end(), hi.inputs.begin(), hi.inputs.end());
  REQUIRE(joined == whole.inputs);
  joined = lo.targets;
  joined.insert(joined.end(), hi.targets.begin(), hi.targets.end());
  REQUIRE(joined == whole.targets);
  for (int row = 0; row < 8; ++row) {  // and each row is the single-sample window
    s.sample(5, row, one.inputs, one.targets);
    const auto offset = static_cast<std::ptrdiff_t>(row * 24);
    REQUIRE(std::equal(one.inputs.begin(), one.inputs.end(), whole.inputs.begin() + offset));
    REQUIRE(std::equal(one.targets.begin(), one.targets.end(), whole.targets.begin() + offset));
  }
}

TEST_CASE("every valid start is reachable, including the last", "[data][sampler]") {
  TempDir dir("sampler");
  const TokenShard shard = counting_shard(dir, 11);
  const BatchSampler s(shard, 8, 0);  // starts 0, 1, 2 hold 9 tokens each
  REQUIRE(s.start_count() == 3);
  std::set<std::int64_t> starts;
  for (std::int64_t i = 0; i < 100; ++i) starts.insert(s.window_start(0, i));
  REQUIRE(starts == std::set<std::int64_t>{0, 1, 2});

  const TokenShard exact = counting_shard(dir, 9);  // exactly seq_len + 1 tokens
  const BatchSampler e(exact, 8, 0);
  REQUIRE(e.window_start(17, 3) == 0);
}

TEST_CASE("the sampler refuses shards too small and mis-sized buffers", "[data][sampler]") {
  TempDir dir("sampler");
  const TokenShard shard = counting_shard(dir, 8);
  REQUIRE_THROWS_WITH(BatchSampler(shard, 8, 0),
                      Catch::Contains("holds 8 tokens") && Catch::Contains("seq_len + 1 = 9") &&
                          Catch::Contains(shard.path().string()));
  REQUIRE_THROWS_AS(EvalWindows(shard, 8), std::invalid_argument);
  REQUIRE_THROWS_AS(BatchSampler(shard, 0, 0), std::invalid_argument);

  const TokenShard ok = counting_shard(dir, 100);
  const BatchSampler s(ok, 8, 0);
  Batch x(2, 8);
  REQUIRE_THROWS_AS(s.sample(0, 0, x.inputs, x.targets), std::invalid_argument);
  REQUIRE_THROWS_AS(s.fill_micro_batch(0, 0, 3, x.inputs, x.targets), std::invalid_argument);
  REQUIRE_THROWS_AS(s.window_start(-1, 0), std::invalid_argument);
  REQUIRE_THROWS_AS(s.window_start(0, -1), std::invalid_argument);
}

TEST_CASE("eval windows cover the shard in order and wrap around", "[data][sampler]") {
  TempDir dir("sampler");
  const TokenShard shard = counting_shard(dir, 103);
  const EvalWindows eval(shard, 10);
  REQUIRE(eval.count() == 10);  // (103 - 1) / 10: window 9 ends its targets at token 100
  Batch all(10, 10);
  eval.fill(0, 10, all.inputs, all.targets);
  for (std::size_t i = 0; i < all.inputs.size(); ++i) {
    REQUIRE(all.inputs[i] == static_cast<std::int32_t>(i));
    REQUIRE(all.targets[i] == static_cast<std::int32_t>(i + 1));
  }
  Batch wrap(3, 10);
  eval.fill(9, 3, wrap.inputs, wrap.targets);  // windows 9, 0, 1
  REQUIRE(wrap.inputs[0] == 90);
  REQUIRE(wrap.inputs[10] == 0);
  REQUIRE(wrap.inputs[20] == 10);
  REQUIRE(wrap.targets[9] == 100);
  REQUIRE(eval.window_start(25) == 50);

  const TokenShard exact = counting_shard(dir, 11);  // seq_len + 1 tokens: one window
  REQUIRE(EvalWindows(exact, 10).count() == 1);
  REQUIRE_THROWS_AS(eval.fill(-1, 1, wrap.inputs, wrap.targets), std::invalid_argument);
}
