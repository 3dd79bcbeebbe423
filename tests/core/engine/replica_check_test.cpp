// The replica comparison's verdict: who diverges (by majority from three replicas on), who
// merely disagrees (two replicas, or no majority), and in which parameters.
#include <catch2/catch.hpp>

#include "engine/replica_check.hpp"

using trainer::describe_verdict;
using trainer::judge_replicas;

namespace {
const std::vector<std::string> kNames{"wte", "h.0.attn.w", "h.0.mlp.w", "lm_head"};
const std::vector<std::uint64_t> kClean{11, 22, 33, 44};
}  // namespace

TEST_CASE("equal replicas agree", "[replica]") {
  const auto v = judge_replicas({kClean, kClean, kClean});
  CHECK(v.agree);
  CHECK(v.diverging.empty());
  CHECK(v.differing.empty());
  CHECK(judge_replicas({kClean}).agree);
}

TEST_CASE("three replicas: the odd one out is named by majority", "[replica]") {
  auto bad = kClean;
  bad[2] = 99;
  const auto v = judge_replicas({kClean, bad, kClean});
  CHECK_FALSE(v.agree);
  CHECK(v.has_majority);
  CHECK(v.diverging == std::vector<int>{1});
  CHECK(v.differing == std::vector<std::size_t>{2});
  // Group ranks 0..2 are global ranks 4, 5, 6 (another pipeline stage, say).
  CHECK(describe_verdict(v, {4, 5, 6}, kNames) == "rank 5 diverges from the majority (ranks 4 and 6) in 'h.0.mlp.w'");
}

TEST_CASE("five replicas, two diverging differently", "[replica]") {
  auto a = kClean, b = kClean;
  a[0] = 1;
  b[0] = 2;
  b[3] = 3;
  const auto v = judge_replicas({kClean, a, kClean, b, kClean});
  CHECK(v.has_majority);
  CHECK(v.diverging == std::vector<int>{1, 3});
  CHECK(v.differing == std::vector<std::size_t>{0, 3});
  CHECK(describe_verdict(v, {0, 1, 2, 3, 4}, kNames) ==
        "ranks 1 and 3 diverge from the majority (ranks 0, 2, and 4) in 'wte', 'lm_head'");
}

TEST_CASE("two replicas can only disagree", "[replica]") {
  auto bad = kClean;
  bad[1] = 7;
  const auto v = judge_replicas({kClean, bad});
  CHECK_FALSE(v.agree);
  CHECK_FALSE(v.has_majority);
  CHECK(v.diverging.empty());
  CHECK(describe_verdict(v, {0, 1}, kNames) ==
        "ranks 0 and 1 disagree in 'h.0.attn.w'; with two replicas there is no majority to tell which one diverged");
}

TEST_CASE("an even split has no majority", "[replica]") {
  auto bad = kClean;
  for (auto& d : bad) d += 1;
  const auto v = judge_replicas({kClean, bad, bad, kClean});
  CHECK_FALSE(v.has_majority);
  CHECK(v.diverging.empty());
  CHECK(describe_verdict(v, {0, 1, 2, 3}, kNames) ==
        "no majority: the replicas split into ranks 0 and 3 | ranks 1 and 2 in 'wte', 'h.0.attn.w', 'h.0.mlp.w' and 1 more");
}
