// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); backward overwrites.
#include <catch2/catch.hpp>
#include <cmath>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::Tensor;

TEST_CASE("gelu_forward matches the GPT-2 formula", "[cpu][gelu]") {
  std::mt19937 rng(41);
  const int N = 1000;
  const auto x = random_vector(N, rng, -5, 5);
  Tensor out = zeros({N});
  backend().gelu_forward(out, upload(x, {N}), N);
  const auto got = download(out);
  for (int i = 0; i < N; ++i) {
    const double v = x[i];
    const double want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    REQUIRE(got[i] == Approx(want).margin(1e-6));
  }
}

TEST_CASE("gelu_backward matches finite differences and overwrites", "[cpu][gelu]") {
  auto& be = backend();
  std::mt19937 rng(42);
  const int N = 500;
  auto x = random_vector(N, rng, -4, 4);
  const auto R = random_vector(N, rng);
  auto loss = [&] {
    Tensor out = zeros({N});
    be.gelu_forward(out, upload(x, {N}), N);
    return dot(download(out), R);
  };
  Tensor dinp = upload(random_vector(N, rng), {N});
  be.gelu_backward(dinp, upload(x, {N}), upload(R, {N}), N);
  const auto g = download(dinp);
  GradCheck options;
  options.samples = 60;
  options.h = 1e-3f;
  check_gradient("dinp", x, g, loss, rng, options);
  be.gelu_backward(dinp, upload(x, {N}), upload(R, {N}), N);
  CHECK(bitwise_equal(download(dinp), g));
}

TEST_CASE("gelu is deterministic", "[cpu][gelu]") {
  auto& be = backend();
  std::mt19937 rng(43);
  const int N = 100003;
  Tensor x = upload(random_vector(N, rng, -6, 6), {N}), dout = upload(random_vector(N, rng), {N});
  std::vector<float> r[2][2];
  for (auto& res : r) {
    Tensor out = zeros({N}), dinp = zeros({N});
    be.gelu_forward(out, x, N);
    be.gelu_backward(dinp, x, dout, N);
    res[0] = download(out), res[1] = download(dinp);
  }
  CHECK(bitwise_equal(r[0][0], r[1][0]));
  CHECK(bitwise_equal(r[0][1], r[1][1]));
}

TEST_CASE("gelu rejects mismatched sizes", "[cpu][gelu]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(backend().gelu_forward(zeros({4}), zeros({5}), 4), std::invalid_argument);
  CHECK_THROWS_WITH(backend().gelu_forward(zeros({4}), zeros({5}), 4), Contains("gelu_forward"));
  CHECK_THROWS_WITH(backend().gelu_backward(zeros({4}), zeros({4}), zeros({3}), 4), Contains("gelu_backward"));
}
