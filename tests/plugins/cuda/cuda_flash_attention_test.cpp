// The cuda backend's fused (flash) attention against the cpu backend's, forward and backward,
// in f32 (relative error <= 1e-5) and bf16 (<= 1e-2; the cpu runs in f32 on the same
// bf16-rounded inputs): fresh random inputs, outputs poisoned with NaN before every run, two
// gpu runs bitwise equal, shapes with T not a multiple of the 64-row tile and every supported
// head size; causality checked directly; unsupported head sizes refused with a clear message.
#include <catch2/catch.hpp>
#include <cstring>
#include <limits>

#include "cuda_test_helpers.hpp"

using namespace cuda_test;
using trainer::Backend;
using trainer::DType;
using trainer::Shape;
using trainer::Tensor;

namespace {

struct Case {
  int B, T, C, NH;
};

std::uint16_t to_bf16(float f) {  // round to nearest even (inputs here are finite or NaN)
  std::uint32_t u = 0;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

float from_bf16(std::uint16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float f = 0;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<float> rounded(std::vector<float> v) {
  for (auto& x : v) x = from_bf16(to_bf16(x));
  return v;
}

// An activation in the dtype under test: bf16 on the gpu when `bf16`, f32 otherwise (the cpu
// backend computes in f32 only).
bool on_gpu(Backend& be) { return be.device() == trainer::Device::cuda; }

Tensor put_as(Backend& be, const std::vector<float>& host, const Shape& shape, bool bf16) {
  if (!bf16 || !on_gpu(be)) return put(be, host, shape);
  Tensor t = be.allocate(shape, DType::bf16);
  REQUIRE(static_cast<std::size_t>(t.numel()) == host.size());
  std::vector<std::uint16_t> h(host.size());
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = to_bf16(host[i]);
  be.copy_from_host(t, h.data());
  return t;
}

Tensor nans_as(Backend& be, const Shape& shape, bool bf16) {
  const auto n = static_cast<std::size_t>(trainer::shape_numel(shape));
  return put_as(be, std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()), shape, bf16);
}

std::vector<float> get_any(Backend& be, const Tensor& t) {
  if (t.dtype() != DType::bf16) return get(be, t);
  std::vector<std::uint16_t> h(static_cast<std::size_t>(t.numel()));
  be.copy_to_host(h.data(), t);
  std::vector<float> out(h.size());
  for (std::size_t i = 0; i < h.size(); ++i) out[i] = from_bf16(h[i]);
  return out;
}

std::string label(const char* op, bool bf16) { return std::string(op) + (bf16 ? " (bf16)" : " (f32)"); }

void check_against_cpu(const Case& c, bool bf16, unsigned seed) {
  INFO((bf16 ? "bf16" : "f32") << " B " << c.B << " T " << c.T << " C " << c.C << " NH " << c.NH << " (head size "
                               << c.C / c.NH << ")");
  std::mt19937 rng(seed);
  const std::size_t BT = static_cast<std::size_t>(c.B) * c.T;
  auto qkv = random_vector(BT * 3 * c.C, rng, -2.0f, 2.0f);
  auto dout = random_vector(BT * c.C, rng);
  if (bf16) qkv = rounded(qkv), dout = rounded(dout);
  const double tol = bf16 ? 1e-2 : 1e-5;
  const Shape qkv_shape{c.B, c.T, 3 * c.C}, out_shape{c.B, c.T, c.C}, stats_shape{c.B, c.NH, c.T};
  compare(
      label("attention_forward", bf16),
      [&](Backend& be) -> Outputs {
        Tensor out = nans_as(be, out_shape, bf16), stats = nans(be, stats_shape);
        be.attention_forward(out, stats, put_as(be, qkv, qkv_shape, bf16), c.B, c.T, c.C, c.NH);
        return {{"out", get_any(be, out)}, {"stats", get(be, stats)}};
      },
      tol);
  compare(
      label("attention_backward", bf16),
      [&](Backend& be) -> Outputs {
        Tensor out = nans_as(be, out_shape, bf16), stats = nans(be, stats_shape);
        Tensor x = put_as(be, qkv, qkv_shape, bf16);
        be.attention_forward(out, stats, x, c.B, c.T, c.C, c.NH);
        Tensor dqkv = nans_as(be, qkv_shape, bf16);
        be.attention_backward(dqkv, put_as(be, dout, out_shape, bf16), x, out, stats, c.B, c.T, c.C, c.NH);
        return {{"dqkv", get_any(be, dqkv)}};
      },
      tol);
}

}  // namespace

TEST_CASE("cuda flash attention f32 matches the cpu", "[cuda][attention]") {
  // Head sizes 4, 16, 24, 32, 64, 128 (f32 pads each to 16/32/64/128); T below, at and across
  // tiles (64 query rows for bf16, 32 to 128 rows per block for f32).
  const auto c = GENERATE(Case{3, 67, 96, 4}, Case{2, 256, 128, 2}, Case{1, 1, 8, 2}, Case{2, 100, 48, 3},
                          Case{1, 200, 64, 2}, Case{2, 130, 256, 2}, Case{2, 64, 128, 2});
  check_against_cpu(c, false, 40);
}

TEST_CASE("cuda flash attention bf16 matches the cpu", "[cuda][attention][bf16]") {
  // GPT-2's shape (head size 64, T 1024) at B 2, and head sizes 32, 48 (padded to 64), 64, 128
  // with T not a multiple of 64.
  const auto c = GENERATE(Case{2, 1024, 768, 12}, Case{3, 67, 192, 3}, Case{2, 130, 128, 4}, Case{2, 100, 96, 2},
                          Case{1, 257, 256, 2}, Case{1, 1, 64, 1}, Case{2, 64, 64, 2});
  check_against_cpu(c, true, 41);
}

TEST_CASE("cuda flash attention is causal", "[cuda][attention]") {
  Backend* g = gpu();
  if (!g) return;
  const bool bf16 = GENERATE(false, true);
  INFO((bf16 ? "bf16" : "f32"));
  const Case c{2, 150, 128, 2};
  std::mt19937 rng(42);
  const Shape qkv_shape{c.B, c.T, 3 * c.C}, out_shape{c.B, c.T, c.C}, stats_shape{c.B, c.NH, c.T};
  const auto qkv = rounded(random_vector(static_cast<std::size_t>(c.B) * c.T * 3 * c.C, rng, -2.0f, 2.0f));
  auto run = [&](const std::vector<float>& x, std::vector<float>& stats_out) {
    Tensor out = nans_as(*g, out_shape, bf16), stats = nans(*g, stats_shape);
    g->attention_forward(out, stats, put_as(*g, x, qkv_shape, bf16), c.B, c.T, c.C, c.NH);
    stats_out = get(*g, stats);
    return get_any(*g, out);
  };
  const int cut = 90;  // inside the second 64-row tile: masking within a tile matters
  auto changed = qkv;
  for (int b = 0; b < c.B; ++b)
    for (int t = cut; t < c.T; ++t)
      for (int i = 0; i < 3 * c.C; ++i) {
        float& x = changed[(static_cast<std::size_t>(b) * c.T + t) * 3 * c.C + i];
        x = from_bf16(to_bf16(x + 1.5f));
      }
  std::vector<float> s0, s1;
  const auto o0 = run(qkv, s0), o1 = run(changed, s1);
  std::size_t later_changed = 0;
  for (int b = 0; b < c.B; ++b)
    for (int t = 0; t < c.T; ++t)
      for (int i = 0; i < c.C; ++i) {
        const std::size_t k = (static_cast<std::size_t>(b) * c.T + t) * c.C + i;
        if (t < cut) {
          INFO("b " << b << " t " << t << " i " << i);
          REQUIRE(o1[k] == o0[k]);  // masked scores weigh exactly 0: the same bits
        } else {
          later_changed += o1[k] != o0[k];
        }
      }
  CHECK(later_changed > static_cast<std::size_t>(c.B * (c.T - cut) * c.C / 2));
  for (std::size_t r = 0; r < s0.size(); ++r) {
    if (static_cast<int>(r % c.T) < cut) REQUIRE(s1[r] == s0[r]);
  }
}

TEST_CASE("cuda flash attention refuses unsupported head sizes clearly", "[cuda][attention]") {
  Backend* g = gpu();
  if (!g) return;
  using Catch::Matchers::Contains;
  // bf16 needs a head size that is a multiple of 8 (and at most 128); f32 at most 128.
  Tensor out = nans_as(*g, {1, 4, 40}, true), stats = nans(*g, {1, 2, 4});
  Tensor qkv = nans_as(*g, {1, 4, 120}, true);
  CHECK_THROWS_WITH(g->attention_forward(out, stats, qkv, 1, 4, 40, 2), Contains("multiple of 8"));
  Tensor out32 = nans(*g, {1, 4, 320}), stats1 = nans(*g, {1, 1, 4}), qkv32 = nans(*g, {1, 4, 960});
  CHECK_THROWS_WITH(g->attention_forward(out32, stats1, qkv32, 1, 4, 320, 1), Contains("at most 128"));
  // Mixed dtypes are refused, naming the tensor.
  Tensor out_f32 = nans(*g, {1, 4, 64}), qkv_bf16 = nans_as(*g, {1, 4, 192}, true);
  CHECK_THROWS_WITH(g->attention_forward(out_f32, nans(*g, {1, 1, 4}), qkv_bf16, 1, 4, 64, 1), Contains("out"));
}
