// layernorm over the last dim (eps 1e-5); backward accumulates dinp, dweight and dbias.
#include <catch2/catch.hpp>
#include <cmath>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::Tensor;

namespace {

struct Fixture {
  int N, C;
  std::vector<float> inp, w, b;
  Fixture(int n, int c, std::mt19937& rng)
      : N(n), C(c), inp(random_vector(n * c, rng, -2, 2)), w(random_vector(c, rng, 0.5f, 1.5f)),
        b(random_vector(c, rng)) {}
  // Returns out, and fills mean and rstd.
  std::vector<float> forward(Tensor& mean, Tensor& rstd) const {
    Tensor out = zeros({N, C});
    mean = zeros({N});
    rstd = zeros({N});
    backend().layernorm_forward(out, mean, rstd, upload(inp, {N, C}), upload(w, {C}), upload(b, {C}), N, C);
    return download(out);
  }
};

}  // namespace

TEST_CASE("layernorm_forward matches the definition", "[cpu][layernorm]") {
  std::mt19937 rng(11);
  Fixture f(37, 70, rng);
  Tensor mean, rstd;
  const auto out = f.forward(mean, rstd);
  const auto m = download(mean), r = download(rstd);
  for (int n = 0; n < f.N; ++n) {
    double mu = 0, var = 0;
    for (int c = 0; c < f.C; ++c) mu += f.inp[n * f.C + c];
    mu /= f.C;
    for (int c = 0; c < f.C; ++c) var += (f.inp[n * f.C + c] - mu) * (f.inp[n * f.C + c] - mu);
    var /= f.C;
    const double s = 1.0 / std::sqrt(var + 1e-5);
    REQUIRE(m[n] == Approx(mu).margin(1e-5));
    REQUIRE(r[n] == Approx(s).epsilon(1e-5));
    for (int c = 0; c < f.C; ++c) {
      const double want = (f.inp[n * f.C + c] - mu) * s * f.w[c] + f.b[c];
      REQUIRE(out[n * f.C + c] == Approx(want).margin(1e-4));
    }
  }
}

TEST_CASE("layernorm_backward matches finite differences", "[cpu][layernorm]") {
  auto& be = backend();
  std::mt19937 rng(12);
  for (auto [N, C] : {std::pair{6, 20}, std::pair{128, 136}}) {  // the second runs threaded
    Fixture f(N, C, rng);
    const auto R = random_vector(N * C, rng);
    auto loss = [&] {
      Tensor mean, rstd;
      return dot(f.forward(mean, rstd), R);
    };
    Tensor mean, rstd;
    f.forward(mean, rstd);
    Tensor dinp = zeros({N, C}), dw = zeros({C}), db = zeros({C});
    be.layernorm_backward(dinp, dw, db, upload(R, {N, C}), upload(f.inp, {N, C}), upload(f.w, {C}),
                          mean, rstd, N, C);
    check_gradient("dinp", f.inp, download(dinp), loss, rng);
    check_gradient("dweight", f.w, download(dw), loss, rng, with_atol(1e-2));
    check_gradient("dbias", f.b, download(db), loss, rng, with_atol(1e-2));
  }
}

TEST_CASE("layernorm_backward accumulates and is deterministic", "[cpu][layernorm]") {
  auto& be = backend();
  std::mt19937 rng(13);
  const int N = 256, C = 160;
  Fixture f(N, C, rng);
  Tensor mean, rstd;
  const auto out1 = f.forward(mean, rstd);
  const auto mean1 = download(mean), rstd1 = download(rstd);
  CHECK(bitwise_equal(f.forward(mean, rstd), out1));
  CHECK(bitwise_equal(download(mean), mean1));
  CHECK(bitwise_equal(download(rstd), rstd1));

  Tensor inp = upload(f.inp, {N, C}), w = upload(f.w, {C}), dout = upload(random_vector(N * C, rng), {N, C});
  std::vector<float> once[3];
  for (int rep = 0; rep < 2; ++rep) {
    Tensor dinp = zeros({N, C}), dw = zeros({C}), db = zeros({C});
    be.layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    const std::vector<float> got[3] = {download(dinp), download(dw), download(db)};
    if (rep == 0) {
      for (int k = 0; k < 3; ++k) once[k] = got[k];
    } else {
      for (int k = 0; k < 3; ++k) CHECK(bitwise_equal(got[k], once[k]));
    }
    be.layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    const std::vector<float> twice[3] = {download(dinp), download(dw), download(db)};
    for (int k = 0; k < 3; ++k) {
      for (std::size_t i = 0; i < once[k].size(); ++i) {
        REQUIRE(twice[k][i] == Approx(2.0f * once[k][i]).margin(1e-5));
      }
    }
  }
}

TEST_CASE("layernorm rejects mismatched shapes", "[cpu][layernorm]") {
  auto& be = backend();
  Tensor x = zeros({4, 8}), m = zeros({4}), w = zeros({8});
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(be.layernorm_forward(x, m, m, x, w, zeros({7}), 4, 8), std::invalid_argument);
  CHECK_THROWS_WITH(be.layernorm_forward(x, m, m, x, w, zeros({7}), 4, 8), Contains("layernorm_forward"));
  CHECK_THROWS_WITH(be.layernorm_backward(x, w, w, x, x, w, m, zeros({3}), 4, 8),
                    Contains("layernorm_backward"));
}
