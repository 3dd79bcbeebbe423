// The cuda backend's device-side sums (accumulate_sum, sum_squares_many, f64 <-> f32 convert)
// against the cpu backend (the SDK defaults), and the staged copy_from_host: fresh random
// inputs, overwritten outputs poisoned with NaN first, accumulated ones started from the same
// value on both, two gpu runs bitwise equal. Without a CUDA device every case WARNs and passes.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "cuda_test_helpers.hpp"

using namespace cuda_test;
using trainer::Backend;
using trainer::DType;
using trainer::SquaresTerm;
using trainer::Tensor;

namespace {

Tensor put_f64(Backend& be, const std::vector<double>& host) {
  Tensor t = be.allocate({static_cast<std::int64_t>(host.size())}, DType::f64);
  be.copy_from_host(t, host.data());
  return t;
}

std::vector<double> get_f64(Backend& be, const Tensor& t) {
  std::vector<double> host(static_cast<std::size_t>(t.numel()));
  be.copy_to_host(host.data(), t);
  return host;
}

double relative(double got, double want) { return want == 0 ? std::fabs(got) : std::fabs(got - want) / std::fabs(want); }

// accumulate_sum twice into an accumulator that starts at 3.25: f32 rows, then f64 values.
double accumulate(Backend& be, const std::vector<float>& rows, const std::vector<double>& wide) {
  Tensor acc = put_f64(be, {3.25});
  be.accumulate_sum(acc, put(be, rows, {static_cast<std::int64_t>(rows.size())}), static_cast<std::int64_t>(rows.size()),
                    1.0);
  be.accumulate_sum(acc, put_f64(be, wide), static_cast<std::int64_t>(wide.size()), 2.5);
  return get_f64(be, acc)[0];
}

}  // namespace

TEST_CASE("cuda accumulate_sum matches the cpu and is deterministic", "[cuda][device_sums]") {
  Backend* g = gpu();
  if (!g) return;
  std::mt19937 rng(21);
  for (const std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{16384 + 7}, std::size_t{262144}}) {
    INFO("N " << n);
    std::vector<float> rows = random_vector(n, rng, 0.0f, 11.0f);  // per-row losses are positive
    std::vector<double> wide(n % 97 + 1);
    for (auto& v : wide) v = std::uniform_real_distribution<double>(-5.0, 5.0)(rng);
    const double want = accumulate(cpu(), rows, wide);
    const double got = accumulate(*g, rows, wide);
    const double again = accumulate(*g, rows, wide);
    record("accumulate_sum (double)", relative(got, want), got == want);
    CHECK(relative(got, want) <= 1e-12);
    CHECK(got == again);
  }
  // Arguments are checked as the other ops do.
  CHECK_THROWS_WITH(g->accumulate_sum(g->allocate({1}, DType::f32), put(*g, {1.0f}, {1}), 1, 1.0),
                    Catch::Matchers::Contains("accumulate_sum: acc is f32"));
  CHECK_THROWS_WITH(g->accumulate_sum(put_f64(*g, {0.0}), put(*g, {1.0f, 2.0f}, {2}), 3, 1.0),
                    Catch::Matchers::Contains("accumulate_sum: x has shape"));
}

TEST_CASE("cuda sum_squares_many matches the cpu and the gpu's sum_squares per term", "[cuda][device_sums]") {
  Backend* g = gpu();
  if (!g) return;
  std::mt19937 rng(22);
  // A few large and odd-sized terms (chunk edges at 8192), then more terms than one launch
  // takes (64), as tensor parallel's per-parameter shares give.
  std::vector<std::size_t> sizes = {1000003, 7, 8192, 8193, 1, 0, 50000};
  std::vector<double> scales = {1.0, 0.5, 1.0, 0.25, 3.0, 1.0, 1.0};
  for (int i = 0; i < 150; ++i) {
    sizes.push_back(1 + rng() % 20000);
    scales.push_back(i % 3 == 0 ? 0.5 : 1.0);
  }
  for (const std::size_t count : {std::size_t{7}, sizes.size()}) {
    INFO(count << " terms");
    std::vector<std::vector<float>> xs;
    for (std::size_t i = 0; i < count; ++i) xs.push_back(random_vector(sizes[i], rng));
    const auto run = [&](Backend& be, DType dtype, double* per_term) {
      std::vector<SquaresTerm> terms;
      double by_term = 0;
      for (std::size_t i = 0; i < count; ++i) {
        Tensor x = sizes[i] ? put(be, xs[i], {static_cast<std::int64_t>(sizes[i])}) : Tensor();
        terms.push_back({x, scales[i]});
        if (sizes[i]) by_term += scales[i] * be.sum_squares(x, x.numel());
      }
      if (per_term) *per_term = by_term;
      Tensor out = be.allocate({1}, dtype);
      if (dtype == DType::f64) {
        be.copy_from_host(out, std::vector<double>{std::numeric_limits<double>::quiet_NaN()}.data());
      } else {
        be.copy_from_host(out, std::vector<float>{std::numeric_limits<float>::quiet_NaN()}.data());
      }
      be.sum_squares_many(out, terms);
      if (dtype == DType::f64) return get_f64(be, out)[0];
      return static_cast<double>(get(be, out)[0]);
    };
    double cpu_by_term = 0, gpu_by_term = 0;
    const double want = run(cpu(), DType::f64, &cpu_by_term);
    const double got = run(*g, DType::f64, &gpu_by_term);
    const double again = run(*g, DType::f64, nullptr);
    CHECK(want == cpu_by_term);  // the default is the sum of the terms' sum_squares, in order
    record("sum_squares_many (double)", relative(got, want), got == want);
    CHECK(relative(got, want) <= 1e-12);
    CHECK(got == again);
    INFO("the kernels repeat sum_squares' chunks and tree per term, and add the terms in order");
    CHECK(got == gpu_by_term);
    const double got_f32 = run(*g, DType::f32, nullptr);
    CHECK(got_f32 == static_cast<double>(static_cast<float>(got)));
    CHECK(run(cpu(), DType::f32, nullptr) == static_cast<double>(static_cast<float>(want)));
  }
  // No terms: zero.
  Tensor out = put_f64(*g, {std::numeric_limits<double>::quiet_NaN()});
  g->sum_squares_many(out, {});
  CHECK(get_f64(*g, out)[0] == 0.0);
  CHECK_THROWS_WITH(g->sum_squares_many(g->allocate({2}, DType::f64), {}), Catch::Matchers::Contains("sum_squares_many"));
}

TEST_CASE("cuda convert between f64 and f32 rounds like the host", "[cuda][device_sums]") {
  Backend* g = gpu();
  if (!g) return;
  std::mt19937 rng(23);
  std::vector<double> wide(100001);
  for (auto& v : wide) v = std::uniform_real_distribution<double>(-1e6, 1e6)(rng) / 3.0;
  wide[0] = std::numeric_limits<double>::quiet_NaN();
  wide[1] = 1.0 + std::ldexp(1.0, -24);  // a tie: rounds to even (1.0)
  wide[2] = 1.0 + 3.0 * std::ldexp(1.0, -24);  // a tie: rounds to even (1 + 2^-22)
  const auto narrow_on = [&](Backend& be) {
    Tensor f = nans(be, {static_cast<std::int64_t>(wide.size())});
    be.convert(f, put_f64(be, wide));
    return get(be, f);
  };
  const auto want = narrow_on(cpu());
  const auto got = narrow_on(*g);
  CHECK(bitwise_equal(got, want));
  record("convert f64 -> f32", 0.0, bitwise_equal(got, want));
  Tensor back = put_f64(*g, std::vector<double>(want.size(), std::numeric_limits<double>::quiet_NaN()));
  g->convert(back, put(*g, want, {static_cast<std::int64_t>(want.size())}));
  const auto widened = get_f64(*g, back);
  bool exact = true;
  for (std::size_t i = 1; i < want.size(); ++i) exact = exact && widened[i] == static_cast<double>(want[i]);
  CHECK(exact);
  CHECK(std::isnan(widened[0]));
}

TEST_CASE("cuda copy_from_host: the host buffer is free when the call returns", "[cuda][device_sums]") {
  Backend* g = gpu();
  if (!g) return;
  // Small copies are staged (8 slots, reused in turn) and do not wait for the stream; one
  // host buffer is overwritten after every call, more times than there are slots.
  std::mt19937 rng(24);
  std::vector<std::vector<float>> sent;
  std::vector<Tensor> dst;
  std::vector<float> buffer;
  for (int i = 0; i < 40; ++i) {
    const std::size_t n = i % 5 == 4 ? (std::size_t{1} << 18) : 1000 + static_cast<std::size_t>(i);  // 1 MiB: staged too
    buffer = random_vector(n, rng);
    sent.push_back(buffer);
    dst.push_back(g->allocate({static_cast<std::int64_t>(n)}, DType::f32));
    g->copy_from_host(dst.back(), buffer.data());
    std::fill(buffer.begin(), buffer.end(), std::numeric_limits<float>::quiet_NaN());
  }
  // Larger than a slot: the synchronous path.
  std::vector<float> big = random_vector((std::size_t{1} << 18) + 1, rng);
  Tensor big_dst = g->allocate({static_cast<std::int64_t>(big.size())}, DType::f32);
  g->copy_from_host(big_dst, big.data());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    INFO("upload " << i);
    CHECK(bitwise_equal(get(*g, dst[i]), sent[i]));
  }
  CHECK(bitwise_equal(get(*g, big_dst), big));
}
