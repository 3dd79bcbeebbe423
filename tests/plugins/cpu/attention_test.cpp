// attention: causal, scale 1/sqrt(head size), packed qkv [B,T,3C], fused: forward keeps only
// each query row's log-sum-exp (stats [B,NH,T]); backward remakes the probabilities from it
// and overwrites dqkv.
#include <catch2/catch.hpp>
#include <cmath>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::Tensor;

namespace {

struct Dims {
  int B, T, C, NH;
};

std::size_t qkv_size(Dims d) { return static_cast<std::size_t>(d.B) * d.T * 3 * d.C; }
std::size_t out_size(Dims d) { return static_cast<std::size_t>(d.B) * d.T * d.C; }

// Naive softmax(Q K^T / sqrt(hs)) V per (b, h), with the causal mask, in double; lse is
// log sum_j<=t exp(s_tj).
void reference(const std::vector<float>& qkv, Dims d, std::vector<double>& out, std::vector<double>& lse) {
  const int hs = d.C / d.NH;
  out.assign(out_size(d), 0.0);
  lse.assign(static_cast<std::size_t>(d.B) * d.NH * d.T, 0.0);
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
        lse[(static_cast<std::size_t>(b) * d.NH + h) * d.T + t] = mx + std::log(sum);
        for (int i = 0; i < hs; ++i) {
          double o = 0;
          for (int j = 0; j <= t; ++j) o += s[j] / sum * at(b, j, 2, h, i);
          out[(static_cast<std::size_t>(b) * d.T + t) * d.C + h * hs + i] = o;
        }
      }
}

std::vector<float> forward(const std::vector<float>& qkv, Dims d, std::vector<float>* lse_out = nullptr) {
  Tensor out = zeros({d.B, d.T, d.C}), lse = zeros({d.B, d.NH, d.T});
  backend().attention_forward(out, lse, upload(qkv, {d.B, d.T, 3 * d.C}), d.B, d.T, d.C, d.NH);
  if (lse_out) *lse_out = download(lse);
  return download(out);
}

}  // namespace

TEST_CASE("attention_forward matches naive causal softmax attention", "[cpu][attention]") {
  std::mt19937 rng(31);
  // T = 33, 64, 130: inside one block of 64 query rows, exactly one, and across three.
  for (Dims d : {Dims{2, 7, 12, 3}, Dims{3, 33, 64, 4}, Dims{1, 64, 32, 2}, Dims{2, 130, 48, 3}}) {
    INFO("B " << d.B << " T " << d.T << " C " << d.C << " NH " << d.NH);
    const auto qkv = random_vector(qkv_size(d), rng, -2, 2);
    std::vector<float> lse;
    const auto out = forward(qkv, d, &lse);
    std::vector<double> want_out, want_lse;
    reference(qkv, d, want_out, want_lse);
    for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == Approx(want_out[i]).margin(1e-5));
    for (std::size_t i = 0; i < lse.size(); ++i) REQUIRE(lse[i] == Approx(want_lse[i]).margin(1e-5));
  }
}

TEST_CASE("attention is causal: later keys and values do not change earlier outputs", "[cpu][attention]") {
  std::mt19937 rng(34);
  const Dims d{2, 100, 32, 2};
  const auto qkv = random_vector(qkv_size(d), rng, -2, 2);
  std::vector<float> lse0, lse1;
  const auto out0 = forward(qkv, d, &lse0);
  const int cut = 70;  // positions >= cut get new q, k and v
  auto changed = qkv;
  for (int b = 0; b < d.B; ++b)
    for (int t = cut; t < d.T; ++t)
      for (int i = 0; i < 3 * d.C; ++i) changed[(static_cast<std::size_t>(b) * d.T + t) * 3 * d.C + i] += 1.5f;
  const auto out1 = forward(changed, d, &lse1);
  double later = 0;
  for (int b = 0; b < d.B; ++b)
    for (int t = 0; t < d.T; ++t)
      for (int i = 0; i < d.C; ++i) {
        const std::size_t k = (static_cast<std::size_t>(b) * d.T + t) * d.C + i;
        if (t < cut) {
          REQUIRE(out1[k] == Approx(out0[k]).margin(1e-6));
        } else {
          later += std::abs(out1[k] - out0[k]);
        }
      }
  CHECK(later > 1.0);  // the change did reach the later rows
  for (std::size_t r = 0; r < lse0.size(); ++r) {
    if (static_cast<int>(r % d.T) < cut) REQUIRE(lse1[r] == Approx(lse0[r]).margin(1e-6));
  }
}

TEST_CASE("attention_backward matches finite differences", "[cpu][attention]") {
  auto& be = backend();
  std::mt19937 rng(32);
  for (Dims d : {Dims{2, 6, 8, 2}, Dims{2, 40, 48, 3}, Dims{1, 75, 16, 2}}) {
    INFO("B " << d.B << " T " << d.T << " C " << d.C << " NH " << d.NH);
    auto qkv = random_vector(qkv_size(d), rng);
    const auto R = random_vector(out_size(d), rng);
    auto loss = [&] { return dot(forward(qkv, d), R); };
    Tensor out = zeros({d.B, d.T, d.C}), lse = zeros({d.B, d.NH, d.T});
    Tensor qkv_t = upload(qkv, {d.B, d.T, 3 * d.C});
    be.attention_forward(out, lse, qkv_t, d.B, d.T, d.C, d.NH);
    // dqkv starts as garbage: it must be overwritten, not accumulated.
    Tensor dqkv = upload(random_vector(qkv_size(d), rng), {d.B, d.T, 3 * d.C});
    be.attention_backward(dqkv, upload(R, {d.B, d.T, d.C}), qkv_t, out, lse, d.B, d.T, d.C, d.NH);
    GradCheck options;
    options.samples = 64;
    check_gradient("dqkv", qkv, download(dqkv), loss, rng, options);
  }
}

TEST_CASE("attention is deterministic and backward overwrites dqkv", "[cpu][attention]") {
  auto& be = backend();
  std::mt19937 rng(33);
  const Dims d{16, 100, 128, 4};
  Tensor qkv = upload(random_vector(qkv_size(d), rng), {d.B, d.T, 3 * d.C});
  Tensor dout = upload(random_vector(out_size(d), rng), {d.B, d.T, d.C});
  std::vector<float> results[2][3];
  for (auto& r : results) {
    Tensor out = zeros({d.B, d.T, d.C}), lse = zeros({d.B, d.NH, d.T});
    Tensor dqkv = zeros({d.B, d.T, 3 * d.C});
    be.attention_forward(out, lse, qkv, d.B, d.T, d.C, d.NH);
    be.attention_backward(dqkv, dout, qkv, out, lse, d.B, d.T, d.C, d.NH);
    r[0] = download(out), r[1] = download(lse), r[2] = download(dqkv);
    be.attention_backward(dqkv, dout, qkv, out, lse, d.B, d.T, d.C, d.NH);
    CHECK(bitwise_equal(download(dqkv), r[2]));
  }
  for (int k = 0; k < 3; ++k) CHECK(bitwise_equal(results[0][k], results[1][k]));
}

TEST_CASE("attention rejects bad shapes", "[cpu][attention]") {
  auto& be = backend();
  using Catch::Matchers::Contains;
  Tensor out = zeros({1, 4, 6}), lse = zeros({1, 2, 4}), qkv = zeros({1, 4, 18});
  CHECK_THROWS_AS(be.attention_forward(out, lse, zeros({1, 4, 12}), 1, 4, 6, 2), std::invalid_argument);
  CHECK_THROWS_WITH(be.attention_forward(out, lse, zeros({1, 4, 12}), 1, 4, 6, 2), Contains("attention_forward"));
  CHECK_THROWS_WITH(be.attention_forward(out, zeros({1, 3, 4}), qkv, 1, 4, 6, 4), Contains("divisible"));
  CHECK_THROWS_WITH(be.attention_forward(out, zeros({1, 2, 4, 4}), qkv, 1, 4, 6, 2), Contains("B*NH*T"));
  CHECK_THROWS_WITH(be.attention_backward(qkv, out, qkv, out, zeros({1, 2, 3}), 1, 4, 6, 2),
                    Contains("attention_backward"));
  CHECK_THROWS_WITH(be.attention_backward(qkv, out, qkv, zeros({1, 4, 5}), lse, 1, 4, 6, 2), Contains("out"));
}
