// matmul: out[N,OC] = inp[N,C] @ weight[OC,C]^T (+ bias); backward overwrites dinp and
// accumulates dweight/dbias.
#include <catch2/catch.hpp>
#include <cmath>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::Tensor;

namespace {

std::vector<float> reference(const std::vector<float>& inp, const std::vector<float>& w,
                             const std::vector<float>* bias, int N, int C, int OC) {
  std::vector<float> out(static_cast<std::size_t>(N) * OC);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      double s = bias ? (*bias)[o] : 0.0;
      for (int c = 0; c < C; ++c) s += static_cast<double>(inp[n * C + c]) * w[o * C + c];
      out[n * OC + o] = static_cast<float>(s);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("matmul_forward matches a triple loop, with and without bias", "[cpu][matmul]") {
  auto& be = backend();
  std::mt19937 rng(1);
  const int N = 70, C = 48, OC = 36;
  auto inp = random_vector(N * C, rng), w = random_vector(OC * C, rng), bias = random_vector(OC, rng);
  for (bool with_bias : {false, true}) {
    Tensor out = zeros({N, OC});
    be.matmul_forward(out, upload(inp, {N, C}), upload(w, {OC, C}),
                      with_bias ? upload(bias, {OC}) : Tensor(), N, C, OC);
    const auto got = download(out);
    const auto want = reference(inp, w, with_bias ? &bias : nullptr, N, C, OC);
    for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want[i]).margin(1e-4));
  }
}

// The SDK's default of the fused projection-plus-residual: exactly matmul_forward then the
// residual add (the reference the cuda fusion is compared with), also when out is the residual.
TEST_CASE("matmul_residual_forward adds the product to the residual", "[cpu][matmul]") {
  auto& be = backend();
  std::mt19937 rng(2);
  const int N = 33, C = 20, OC = 12;
  auto inp = random_vector(N * C, rng), w = random_vector(OC * C, rng), bias = random_vector(OC, rng),
       res = random_vector(N * OC, rng);
  Tensor product = zeros({N, OC}), want = zeros({N, OC});
  be.matmul_forward(product, upload(inp, {N, C}), upload(w, {OC, C}), upload(bias, {OC}), N, C, OC);
  be.residual_forward(want, upload(res, {N, OC}), product, N * OC);
  for (bool in_place : {false, true}) {
    Tensor residual = upload(res, {N, OC});
    Tensor out = in_place ? residual : zeros({N, OC});
    be.matmul_residual_forward(out, upload(inp, {N, C}), upload(w, {OC, C}), upload(bias, {OC}), residual, N, C, OC);
    INFO((in_place ? "in place" : "out of place"));
    CHECK(download(out) == download(want));
  }
}

TEST_CASE("matmul_backward matches finite differences", "[cpu][matmul]") {
  auto& be = backend();
  std::mt19937 rng(2);
  const int N = 24, C = 20, OC = 12;
  auto inp = random_vector(N * C, rng), w = random_vector(OC * C, rng), bias = random_vector(OC, rng);
  const auto R = random_vector(N * OC, rng);
  for (bool with_bias : {false, true}) {
    auto loss = [&] {
      Tensor out = zeros({N, OC});
      be.matmul_forward(out, upload(inp, {N, C}), upload(w, {OC, C}),
                        with_bias ? upload(bias, {OC}) : Tensor(), N, C, OC);
      return dot(download(out), R);
    };
    Tensor dinp = zeros({N, C}), dw = zeros({OC, C}), db = with_bias ? zeros({OC}) : Tensor();
    be.matmul_backward(dinp, dw, db, upload(R, {N, OC}), upload(inp, {N, C}), upload(w, {OC, C}), N, C, OC);
    check_gradient("dinp", inp, download(dinp), loss, rng);
    check_gradient("dweight", w, download(dw), loss, rng);
    if (with_bias) check_gradient("dbias", bias, download(db), loss, rng);
  }
}

TEST_CASE("matmul_backward overwrites dinp and accumulates dweight and dbias", "[cpu][matmul]") {
  auto& be = backend();
  std::mt19937 rng(3);
  const int N = 130, C = 64, OC = 96;  // large enough for the threaded column sums
  Tensor inp = upload(random_vector(N * C, rng), {N, C});
  Tensor w = upload(random_vector(OC * C, rng), {OC, C});
  Tensor dout = upload(random_vector(N * OC, rng), {N, OC});
  Tensor dinp = upload(random_vector(N * C, rng), {N, C});  // garbage: must be overwritten
  Tensor dw = zeros({OC, C}), db = zeros({OC});
  be.matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
  const auto dinp1 = download(dinp), dw1 = download(dw), db1 = download(db);
  be.matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
  CHECK(bitwise_equal(download(dinp), dinp1));
  const auto dw2 = download(dw), db2 = download(db);
  for (std::size_t i = 0; i < dw1.size(); ++i) REQUIRE(dw2[i] == Approx(2.0f * dw1[i]).margin(1e-5));
  for (std::size_t i = 0; i < db1.size(); ++i) REQUIRE(db2[i] == Approx(2.0f * db1[i]).margin(1e-5));

  SECTION("an empty dinp is skipped") {
    Tensor dw3 = zeros({OC, C});
    be.matmul_backward(Tensor(), dw3, Tensor(), dout, inp, w, N, C, OC);
    CHECK(bitwise_equal(download(dw3), dw1));
  }
}

TEST_CASE("matmul is deterministic", "[cpu][matmul]") {
  auto& be = backend();
  std::mt19937 rng(4);
  const int N = 256, C = 128, OC = 384;
  Tensor inp = upload(random_vector(N * C, rng), {N, C});
  Tensor w = upload(random_vector(OC * C, rng), {OC, C});
  Tensor bias = upload(random_vector(OC, rng), {OC});
  Tensor dout = upload(random_vector(N * OC, rng), {N, OC});
  std::vector<float> results[2][4];
  for (auto& r : results) {
    Tensor out = zeros({N, OC}), dinp = zeros({N, C}), dw = zeros({OC, C}), db = zeros({OC});
    be.matmul_forward(out, inp, w, bias, N, C, OC);
    be.matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
    r[0] = download(out), r[1] = download(dinp), r[2] = download(dw), r[3] = download(db);
  }
  for (int k = 0; k < 4; ++k) CHECK(bitwise_equal(results[0][k], results[1][k]));
}

TEST_CASE("matmul rejects mismatched shapes", "[cpu][matmul]") {
  auto& be = backend();
  Tensor out = zeros({4, 3}), inp = zeros({4, 5}), w = zeros({3, 5}), bad = zeros({3, 4});
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(be.matmul_forward(out, inp, bad, Tensor(), 4, 5, 3), std::invalid_argument);
  CHECK_THROWS_WITH(be.matmul_forward(out, inp, bad, Tensor(), 4, 5, 3), Contains("matmul_forward"));
  CHECK_THROWS_WITH(be.matmul_forward(out, inp, w, zeros({4}), 4, 5, 3), Contains("bias"));
  CHECK_THROWS_WITH(be.matmul_backward(inp, bad, Tensor(), out, inp, w, 4, 5, 3),
                    Contains("matmul_backward"));
  CHECK_THROWS_AS(be.matmul_forward(out, inp, w, Tensor(), 0, 5, 3), std::invalid_argument);
}
