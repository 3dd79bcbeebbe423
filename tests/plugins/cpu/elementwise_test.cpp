// Elementwise ops: residual, dropout (counter-based mask), axpby, sum_squares.
#include <catch2/catch.hpp>
#include <cmath>

#include "cpu_backend_helpers.hpp"
#include "trainer/rng.hpp"

using namespace cpu_test;
using trainer::RngKey;
using trainer::Tensor;

TEST_CASE("residual_forward adds, and its gradient is the upstream one", "[cpu][residual]") {
  auto& be = backend();
  std::mt19937 rng(51);
  const int N = 300;
  auto a = random_vector(N, rng), b = random_vector(N, rng);
  const auto R = random_vector(N, rng);
  auto loss = [&] {
    Tensor out = zeros({N});
    be.residual_forward(out, upload(a, {N}), upload(b, {N}), N);
    return dot(download(out), R);
  };
  Tensor out = zeros({N});
  be.residual_forward(out, upload(a, {N}), upload(b, {N}), N);
  const auto got = download(out);
  for (int i = 0; i < N; ++i) REQUIRE(got[i] == a[i] + b[i]);
  check_gradient("da", a, R, loss, rng);
  check_gradient("db", b, R, loss, rng);
  CHECK_THROWS_WITH(be.residual_forward(out, zeros({N - 1}), zeros({N}), N),
                    Catch::Matchers::Contains("residual_forward"));
}

TEST_CASE("dropout keeps element i iff rng_uniform(key, i) >= p, scaled by 1/(1-p)", "[cpu][dropout]") {
  auto& be = backend();
  std::mt19937 rng(52);
  const int N = 1 << 20;
  const float p = 0.3f;
  const RngKey key{1234, trainer::rng_stream(7, 1, 3)};
  const auto x = random_vector(N, rng, 0.5f, 1.5f);  // never 0, so zeros mark dropped
  Tensor inp = upload(x, {N}), out = zeros({N});
  be.dropout_forward(out, inp, p, key, N);
  const auto y = download(out);
  std::int64_t dropped = 0;
  for (int i = 0; i < N; ++i) {
    const bool keep = trainer::rng_uniform(key, static_cast<std::uint64_t>(i)) >= p;
    REQUIRE(y[i] == (keep ? x[i] * (1.0f / (1.0f - p)) : 0.0f));
    dropped += y[i] == 0.0f;
  }
  CHECK(static_cast<double>(dropped) / N == Approx(p).margin(0.005));

  SECTION("backward applies the same mask") {
    const auto g = random_vector(N, rng, 0.5f, 1.5f);
    Tensor dinp = zeros({N});
    be.dropout_backward(dinp, upload(g, {N}), p, key, N);
    const auto dg = download(dinp);
    for (int i = 0; i < N; ++i) REQUIRE((dg[i] == 0.0f) == (y[i] == 0.0f));
    for (int i = 0; i < N; ++i) REQUIRE(dg[i] == (y[i] == 0.0f ? 0.0f : g[i] * (1.0f / (1.0f - p))));
  }
  SECTION("the same key gives the same mask, in place too") {
    Tensor again = upload(x, {N});
    be.dropout_forward(again, again, p, key, N);
    CHECK(bitwise_equal(download(again), y));
  }
  SECTION("another stream gives another mask") {
    Tensor other = zeros({N});
    be.dropout_forward(other, inp, p, RngKey{key.seed, key.stream + 1}, N);
    const auto z = download(other);
    std::int64_t differ = 0;
    for (int i = 0; i < N; ++i) differ += (z[i] == 0.0f) != (y[i] == 0.0f);
    CHECK(differ > N / 4);  // independent masks disagree on 2p(1-p) = 42% of elements
  }
  SECTION("p = 0 is an exact copy") {
    Tensor copy = zeros({N}), dcopy = zeros({N});
    be.dropout_forward(copy, inp, 0.0f, key, N);
    be.dropout_backward(dcopy, inp, 0.0f, key, N);
    CHECK(bitwise_equal(download(copy), x));
    CHECK(bitwise_equal(download(dcopy), x));
  }
}

TEST_CASE("dropout_backward matches finite differences", "[cpu][dropout]") {
  auto& be = backend();
  std::mt19937 rng(53);
  const int N = 400;
  const float p = 0.25f;
  const RngKey key{99, 5};
  auto x = random_vector(N, rng);
  const auto R = random_vector(N, rng);
  auto loss = [&] {
    Tensor out = zeros({N});
    be.dropout_forward(out, upload(x, {N}), p, key, N);
    return dot(download(out), R);
  };
  Tensor dinp = upload(R, {N});
  be.dropout_backward(dinp, dinp, p, key, N);  // in place: dinp aliases dout
  GradCheck options;
  options.samples = 60;
  check_gradient("dinp", x, download(dinp), loss, rng, options);
  CHECK_THROWS_WITH(be.dropout_forward(zeros({N}), zeros({N}), 1.0f, key, N),
                    Catch::Matchers::Contains("dropout_forward"));
  CHECK_THROWS_WITH(be.dropout_backward(zeros({N}), zeros({N + 1}), p, key, N),
                    Catch::Matchers::Contains("dropout_backward"));
}

TEST_CASE("axpby computes y = a x + b y", "[cpu][axpby]") {
  auto& be = backend();
  std::mt19937 rng(54);
  const int N = 70000;
  const auto x = random_vector(N, rng), y = random_vector(N, rng);
  Tensor yt = upload(y, {N});
  be.axpby(yt, 0.5f, upload(x, {N}), -2.0f, N);
  const auto got = download(yt);
  for (int i = 0; i < N; ++i) REQUIRE(got[i] == 0.5f * x[i] + -2.0f * y[i]);
  // b = 0 does not read y, so NaN there does not leak.
  Tensor nan = upload(std::vector<float>(N, std::nanf("")), {N});
  be.axpby(nan, 2.0f, upload(x, {N}), 0.0f, N);
  const auto scaled = download(nan);
  for (int i = 0; i < N; ++i) REQUIRE(scaled[i] == 2.0f * x[i]);
  CHECK_THROWS_WITH(be.axpby(yt, 1.0f, zeros({N - 1}), 1.0f, N), Catch::Matchers::Contains("axpby"));
}

TEST_CASE("sum_squares is exact enough and deterministic", "[cpu][sum_squares]") {
  auto& be = backend();
  std::mt19937 rng(55);
  for (int N : {1, 1000, 1000003}) {
    const auto x = random_vector(N, rng);
    Tensor t = upload(x, {N});
    double want = 0;
    for (float v : x) want += static_cast<double>(v) * v;
    const double first = be.sum_squares(t, N);
    CHECK(first == Approx(want).epsilon(1e-12));
    for (int rep = 0; rep < 3; ++rep) CHECK(be.sum_squares(t, N) == first);
  }
  CHECK_THROWS_WITH(be.sum_squares(zeros({3}), 4), Catch::Matchers::Contains("sum_squares"));
}
