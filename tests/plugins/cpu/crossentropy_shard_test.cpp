// The vocabulary-parallel loss (Backend::crossentropy_shard_stats/_finish, the SDK's host
// defaults the cpu backend uses): cutting the vocabulary into column blocks, gathering each
// block's row statistics and finishing per block gives the whole-row loss and gradient.
#include <catch2/catch.hpp>
#include <cmath>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::DType;
using trainer::Tensor;

namespace {

struct Sharded {
  std::vector<float> losses;       // per row, from shard 0's finish (every shard's are equal)
  std::vector<float> dlogits;      // [N, V], the shards' gradients side by side
  bool shards_agree = true;        // every shard's finish gave the same losses, bitwise
};

Sharded run_sharded(const std::vector<float>& logits, const std::vector<std::int32_t>& targets, int N, int V,
                    int shards, float dloss) {
  auto& be = backend();
  const int Vl = V / shards;
  std::vector<std::vector<float>> blocks(static_cast<std::size_t>(shards));
  for (int r = 0; r < shards; ++r) {
    for (int n = 0; n < N; ++n) {
      const auto* row = logits.data() + static_cast<std::size_t>(n) * V + static_cast<std::size_t>(r) * Vl;
      blocks[static_cast<std::size_t>(r)].insert(blocks[static_cast<std::size_t>(r)].end(), row, row + Vl);
    }
  }
  const Tensor tg = upload_i32(targets, {N});
  Tensor all = be.allocate({shards, N, 3}, DType::f32);
  for (int r = 0; r < shards; ++r) {
    be.crossentropy_shard_stats(all.view(static_cast<std::int64_t>(r) * N * 3, {N, 3}),
                                upload(blocks[static_cast<std::size_t>(r)], {N, Vl}), tg, r * Vl, N, Vl);
  }
  Sharded out;
  out.dlogits.assign(static_cast<std::size_t>(N) * V, 0.0f);
  for (int r = 0; r < shards; ++r) {
    Tensor losses = zeros({N}), d = zeros({N, Vl});
    be.crossentropy_shard_finish(losses, d, upload(blocks[static_cast<std::size_t>(r)], {N, Vl}), tg, all, shards,
                                 r * Vl, dloss, N, Vl);
    const auto l = download(losses), g = download(d);
    if (r == 0) out.losses = l;
    out.shards_agree = out.shards_agree && bitwise_equal(l, out.losses);
    for (int n = 0; n < N; ++n) {
      for (int j = 0; j < Vl; ++j) {
        out.dlogits[static_cast<std::size_t>(n) * V + static_cast<std::size_t>(r) * Vl + j] =
            g[static_cast<std::size_t>(n) * Vl + j];
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the vocabulary cut in shards gives the whole row's loss and gradient", "[cpu][crossentropy][tp]") {
  const int N = 7, V = 60;
  const float dloss = 1.0f / 7.0f;
  std::mt19937 rng(31);
  const auto logits = random_vector(static_cast<std::size_t>(N) * V, rng, -6.0f, 6.0f);
  std::vector<std::int32_t> targets = {0, 59, 17, -1, 30, 44, 29};  // ends of shards, an ignored row
  auto& be = backend();
  Tensor whole_losses = zeros({N}), whole_d = zeros({N, V});
  be.crossentropy_forward_backward(whole_losses, whole_d, upload(logits, {N, V}), upload_i32(targets, {N}), dloss, N,
                                   V);
  const auto want_l = download(whole_losses), want_d = download(whole_d);
  for (const int shards : {1, 2, 3, 4}) {
    INFO(shards << " shard(s)");
    const Sharded got = run_sharded(logits, targets, N, V, shards, dloss);
    CHECK(got.shards_agree);
    for (int n = 0; n < N; ++n) {
      INFO("row " << n);
      CHECK(got.losses[static_cast<std::size_t>(n)] == Approx(want_l[static_cast<std::size_t>(n)]).epsilon(1e-6).margin(1e-7));
    }
    for (std::size_t i = 0; i < want_d.size(); ++i) {
      INFO("dlogits element " << i);
      CHECK(got.dlogits[i] == Approx(want_d[i]).epsilon(1e-5).margin(1e-8));
    }
  }
  // The ignored row: loss 0, gradient 0 on every shard.
  const Sharded two = run_sharded(logits, targets, N, V, 2, dloss);
  CHECK(two.losses[3] == 0.0f);
  for (int j = 0; j < V; ++j) CHECK(two.dlogits[static_cast<std::size_t>(3) * V + j] == 0.0f);
}

TEST_CASE("the shard defaults refuse logits they cannot read", "[cpu][crossentropy][tp]") {
  auto& be = backend();
  Tensor stats = zeros({2, 3});
  Tensor bf = be.allocate({2, 4}, DType::bf16);
  CHECK_THROWS_WITH(be.crossentropy_shard_stats(stats, bf, upload_i32({0, 1}, {2}), 0, 2, 4),
                    Catch::Contains("f32 logits only, not bf16"));
}
