// Softmax cross-entropy: losses per row, dlogits = (softmax - onehot) * dloss; targets < 0
// are ignored; dlogits may alias logits or be empty.
#include <catch2/catch.hpp>
#include <cmath>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::Tensor;

namespace {

std::vector<std::int32_t> targets_with_ignored(int N, int V, std::mt19937& rng) {
  std::uniform_int_distribution<std::int32_t> d(0, V - 1);
  std::vector<std::int32_t> t(N);
  for (int n = 0; n < N; ++n) t[n] = n % 4 == 3 ? -1 : d(rng);  // every fourth row ignored
  return t;
}

}  // namespace

TEST_CASE("crossentropy losses match log-sum-exp", "[cpu][crossentropy]") {
  std::mt19937 rng(61);
  const int N = 40, V = 300;
  const auto logits = random_vector(N * V, rng, -4, 4);
  const auto tgt = targets_with_ignored(N, V, rng);
  Tensor losses = zeros({N});
  backend().crossentropy_forward_backward(losses, Tensor(), upload(logits, {N, V}), upload_i32(tgt, {N}), 1.0f, N, V);
  const auto got = download(losses);
  for (int n = 0; n < N; ++n) {
    double mx = -1e300, sum = 0;
    for (int i = 0; i < V; ++i) mx = std::max(mx, static_cast<double>(logits[n * V + i]));
    for (int i = 0; i < V; ++i) sum += std::exp(logits[n * V + i] - mx);
    const double want = tgt[n] < 0 ? 0.0 : mx + std::log(sum) - logits[n * V + tgt[n]];
    REQUIRE(got[n] == Approx(want).margin(1e-5));
  }
}

TEST_CASE("crossentropy gradient matches finite differences", "[cpu][crossentropy]") {
  auto& be = backend();
  std::mt19937 rng(62);
  const int N = 12, V = 50;
  const float dloss = 0.7f;
  auto logits = random_vector(N * V, rng, -3, 3);
  const auto tgt = targets_with_ignored(N, V, rng);
  Tensor targets = upload_i32(tgt, {N});
  auto loss = [&] {
    Tensor losses = zeros({N});
    be.crossentropy_forward_backward(losses, Tensor(), upload(logits, {N, V}), targets, dloss, N, V);
    return dloss * dot(download(losses), std::vector<float>(N, 1.0f));
  };
  Tensor losses = zeros({N}), dlogits = upload(random_vector(N * V, rng), {N, V});
  be.crossentropy_forward_backward(losses, dlogits, upload(logits, {N, V}), targets, dloss, N, V);
  const auto g = download(dlogits);
  GradCheck options;
  options.samples = 80;
  check_gradient("dlogits", logits, g, loss, rng, options);
  const auto l = download(losses);
  for (int n = 0; n < N; ++n) {
    if (tgt[n] >= 0) continue;
    REQUIRE(l[n] == 0.0f);
    for (int i = 0; i < V; ++i) REQUIRE(g[n * V + i] == 0.0f);
  }

  SECTION("in place, dlogits aliasing logits, gives the same bits") {
    Tensor inplace = upload(logits, {N, V}), losses2 = zeros({N});
    be.crossentropy_forward_backward(losses2, inplace, inplace, targets, dloss, N, V);
    CHECK(bitwise_equal(download(inplace), g));
    CHECK(bitwise_equal(download(losses2), l));
  }
}

TEST_CASE("crossentropy is deterministic and rejects bad input", "[cpu][crossentropy]") {
  auto& be = backend();
  std::mt19937 rng(63);
  const int N = 256, V = 1000;
  Tensor logits = upload(random_vector(N * V, rng, -5, 5), {N, V});
  Tensor targets = upload_i32(targets_with_ignored(N, V, rng), {N});
  std::vector<float> r[2][2];
  for (auto& res : r) {
    Tensor losses = zeros({N}), dlogits = zeros({N, V});
    be.crossentropy_forward_backward(losses, dlogits, logits, targets, 1.0f / N, N, V);
    res[0] = download(losses), res[1] = download(dlogits);
  }
  CHECK(bitwise_equal(r[0][0], r[1][0]));
  CHECK(bitwise_equal(r[0][1], r[1][1]));

  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(be.crossentropy_forward_backward(zeros({N}), Tensor(), zeros({N, V - 1}), targets, 1.0f, N, V),
                  std::invalid_argument);
  CHECK_THROWS_WITH(be.crossentropy_forward_backward(zeros({N}), Tensor(), zeros({N, V - 1}), targets, 1.0f, N, V),
                    Contains("crossentropy_forward_backward"));
  CHECK_THROWS_WITH(be.crossentropy_forward_backward(zeros({2}), Tensor(), zeros({2, 3}), upload_i32({0, 3}, {2}), 1.0f, 2, 3),
                    Contains("target 3"));
  CHECK_THROWS_WITH(be.crossentropy_forward_backward(zeros({2}), Tensor(), zeros({2, 3}), zeros({2}), 1.0f, 2, 3),
                    Contains("i32"));
}
