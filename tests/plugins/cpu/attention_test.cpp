// attention: causal, scale 1/sqrt(head size), packed qkv [B,T,3C]; att keeps the softmax
// probabilities (0 above the diagonal); backward overwrites dqkv.
#include <catch2/catch.hpp>
#include <cmath>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::Tensor;

namespace {

struct Dims {
  int B, T, C, NH;
};

// Naive softmax(Q K^T / sqrt(hs)) V per (b, h), with the causal mask, in double.
void reference(const std::vector<float>& qkv, Dims d, std::vector<double>& out, std::vector<double>& att) {
  const int hs = d.C / d.NH;
  out.assign(static_cast<std::size_t>(d.B) * d.T * d.C, 0.0);
  att.assign(static_cast<std::size_t>(d.B) * d.NH * d.T * d.T, 0.0);
  auto at = [&](int b, int t, int part, int h, int i) {
    return static_cast<double>(qkv[(static_cast<std::size_t>(b) * d.T + t) * 3 * d.C + part * d.C + h * hs + i]);
  };
  for (int b = 0; b < d.B; ++b)
    for (int h = 0; h < d.NH; ++h)
      for (int t = 0; t < d.T; ++t) {
        std::vector<double> s(t + 1);
        double mx = -1e300;
        for (int j = 0; j <= t; ++j) {
          double dotp = 0;
          for (int i = 0; i < hs; ++i) dotp += at(b, t, 0, h, i) * at(b, j, 1, h, i);
          s[j] = dotp / std::sqrt(static_cast<double>(hs));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (auto& x : s) sum += (x = std::exp(x - mx));
        double* row = &att[((static_cast<std::size_t>(b) * d.NH + h) * d.T + t) * d.T];
        for (int j = 0; j <= t; ++j) row[j] = s[j] / sum;
        for (int i = 0; i < hs; ++i) {
          double o = 0;
          for (int j = 0; j <= t; ++j) o += row[j] * at(b, j, 2, h, i);
          out[(static_cast<std::size_t>(b) * d.T + t) * d.C + h * hs + i] = o;
        }
      }
}

std::vector<float> forward(const std::vector<float>& qkv, Dims d, std::vector<float>* att_out = nullptr) {
  Tensor out = zeros({d.B, d.T, d.C}), att = zeros({d.B, d.NH, d.T, d.T});
  backend().attention_forward(out, att, upload(qkv, {d.B, d.T, 3 * d.C}), d.B, d.T, d.C, d.NH);
  if (att_out) *att_out = download(att);
  return download(out);
}

}  // namespace

TEST_CASE("attention_forward matches naive causal softmax attention", "[cpu][attention]") {
  std::mt19937 rng(31);
  for (Dims d : {Dims{2, 7, 12, 3}, Dims{3, 33, 64, 4}}) {
    const auto qkv = random_vector(static_cast<std::size_t>(d.B) * d.T * 3 * d.C, rng, -2, 2);
    std::vector<float> att;
    const auto out = forward(qkv, d, &att);
    std::vector<double> want_out, want_att;
    reference(qkv, d, want_out, want_att);
    for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == Approx(want_out[i]).margin(1e-5));
    for (std::size_t i = 0; i < att.size(); ++i) REQUIRE(att[i] == Approx(want_att[i]).margin(1e-6));
    for (std::size_t r = 0; r < att.size() / d.T; ++r) {
      const int t = static_cast<int>(r % d.T);
      double sum = 0;
      for (int j = 0; j < d.T; ++j) {
        if (j > t) REQUIRE(att[r * d.T + j] == 0.0f);
        sum += att[r * d.T + j];
      }
      REQUIRE(sum == Approx(1.0).margin(1e-5));
    }
  }
}

TEST_CASE("attention_backward matches finite differences", "[cpu][attention]") {
  auto& be = backend();
  std::mt19937 rng(32);
  for (Dims d : {Dims{2, 6, 8, 2}, Dims{2, 40, 48, 3}}) {
    const std::size_t n_qkv = static_cast<std::size_t>(d.B) * d.T * 3 * d.C;
    auto qkv = random_vector(n_qkv, rng);
    const auto R = random_vector(static_cast<std::size_t>(d.B) * d.T * d.C, rng);
    auto loss = [&] { return dot(forward(qkv, d), R); };
    Tensor out = zeros({d.B, d.T, d.C}), att = zeros({d.B, d.NH, d.T, d.T});
    Tensor qkv_t = upload(qkv, {d.B, d.T, 3 * d.C});
    be.attention_forward(out, att, qkv_t, d.B, d.T, d.C, d.NH);
    // dqkv starts as garbage: it must be overwritten, not accumulated.
    Tensor dqkv = upload(random_vector(n_qkv, rng), {d.B, d.T, 3 * d.C});
    Tensor datt = zeros({d.B, d.NH, d.T, d.T});
    be.attention_backward(dqkv, datt, upload(R, {d.B, d.T, d.C}), qkv_t, att, d.B, d.T, d.C, d.NH);
    GradCheck options;
    options.samples = 48;
    check_gradient("dqkv", qkv, download(dqkv), loss, rng, options);
  }
}

TEST_CASE("attention is deterministic and backward overwrites dqkv", "[cpu][attention]") {
  auto& be = backend();
  std::mt19937 rng(33);
  const Dims d{16, 64, 128, 4};
  const std::size_t n_qkv = static_cast<std::size_t>(d.B) * d.T * 3 * d.C;
  Tensor qkv = upload(random_vector(n_qkv, rng), {d.B, d.T, 3 * d.C});
  Tensor dout = upload(random_vector(static_cast<std::size_t>(d.B) * d.T * d.C, rng), {d.B, d.T, d.C});
  std::vector<float> results[2][3];
  for (auto& r : results) {
    Tensor out = zeros({d.B, d.T, d.C}), att = zeros({d.B, d.NH, d.T, d.T});
    Tensor dqkv = zeros({d.B, d.T, 3 * d.C}), datt = zeros({d.B, d.NH, d.T, d.T});
    be.attention_forward(out, att, qkv, d.B, d.T, d.C, d.NH);
    be.attention_backward(dqkv, datt, dout, qkv, att, d.B, d.T, d.C, d.NH);
    r[0] = download(out), r[1] = download(att), r[2] = download(dqkv);
    be.attention_backward(dqkv, datt, dout, qkv, att, d.B, d.T, d.C, d.NH);
    CHECK(bitwise_equal(download(dqkv), r[2]));
  }
  for (int k = 0; k < 3; ++k) CHECK(bitwise_equal(results[0][k], results[1][k]));
}

TEST_CASE("attention rejects bad shapes", "[cpu][attention]") {
  auto& be = backend();
  using Catch::Matchers::Contains;
  Tensor out = zeros({1, 4, 6}), att = zeros({1, 2, 4, 4}), qkv = zeros({1, 4, 18});
  CHECK_THROWS_AS(be.attention_forward(out, att, zeros({1, 4, 12}), 1, 4, 6, 2), std::invalid_argument);
  CHECK_THROWS_WITH(be.attention_forward(out, att, zeros({1, 4, 12}), 1, 4, 6, 2), Contains("attention_forward"));
  CHECK_THROWS_WITH(be.attention_forward(out, zeros({1, 3, 4, 4}), qkv, 1, 4, 6, 4), Contains("divisible"));
  CHECK_THROWS_WITH(be.attention_backward(qkv, att, out, qkv, zeros({1, 2, 4, 3}), 1, 4, 6, 2),
                    Contains("attention_backward"));
}
