// AdamW: bias-corrected moments, decoupled weight decay
// p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p), t 1-based.
#include <catch2/catch.hpp>
#include <cmath>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::Tensor;

TEST_CASE("adamw_update matches a scalar reference over 3 steps", "[cpu][adamw]") {
  auto& be = backend();
  std::mt19937 rng(71);
  const int N = 20000;
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
  std::vector<double> p, m(N, 0.0), v(N, 0.0);
  const auto p0 = random_vector(N, rng);
  p.assign(p0.begin(), p0.end());
  Tensor param = upload(p0, {N}), mt = zeros({N}), vt = zeros({N});
  for (int t = 1; t <= 3; ++t) {
    const auto g = random_vector(N, rng);
    be.adamw_update(param, upload(g, {N}), mt, vt, N, lr, b1, b2, eps, wd, t);
    for (int i = 0; i < N; ++i) {
      m[i] = b1 * m[i] + (1.0 - b1) * g[i];
      v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
      const double mhat = m[i] / (1.0 - std::pow(b1, t));
      const double vhat = v[i] / (1.0 - std::pow(b2, t));
      p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * p[i]);
    }
    const auto gp = download(param), gm = download(mt), gv = download(vt);
    for (int i = 0; i < N; ++i) {
      REQUIRE(gm[i] == Approx(m[i]).epsilon(1e-5).margin(1e-7));
      REQUIRE(gv[i] == Approx(v[i]).epsilon(1e-5).margin(1e-9));
      REQUIRE(gp[i] == Approx(p[i]).epsilon(1e-5).margin(1e-6));
    }
  }
}

TEST_CASE("adamw_update is deterministic and rejects bad input", "[cpu][adamw]") {
  auto& be = backend();
  std::mt19937 rng(72);
  const int N = 50000;
  const auto p0 = random_vector(N, rng), g = random_vector(N, rng);
  std::vector<float> r[2][3];
  for (auto& res : r) {
    Tensor param = upload(p0, {N}), m = zeros({N}), v = zeros({N}), grad = upload(g, {N});
    for (int t = 1; t <= 2; ++t) be.adamw_update(param, grad, m, v, N, 3e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
    res[0] = download(param), res[1] = download(m), res[2] = download(v);
  }
  for (int k = 0; k < 3; ++k) CHECK(bitwise_equal(r[0][k], r[1][k]));
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(be.adamw_update(zeros({4}), zeros({5}), zeros({4}), zeros({4}), 4, 1, 0.9f, 0.99f, 1e-8f, 0, 1),
                  std::invalid_argument);
  CHECK_THROWS_WITH(be.adamw_update(zeros({4}), zeros({4}), zeros({4}), zeros({3}), 4, 1, 0.9f, 0.99f, 1e-8f, 0, 1),
                    Contains("adamw_update"));
  CHECK_THROWS_WITH(be.adamw_update(zeros({4}), zeros({4}), zeros({4}), zeros({4}), 4, 1, 0.9f, 0.99f, 1e-8f, 0, 0),
                    Contains("adamw_update"));
}
