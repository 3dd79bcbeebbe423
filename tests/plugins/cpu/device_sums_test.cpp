// The SDK's device-side sums as the cpu backend runs them (the defaults): accumulate_sum adds
// in index order, sum_squares_many is the ordered sum of the terms' sum_squares, and
// convert moves the f64 scalars to and from f32 with the host's rounding.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::DType;
using trainer::SquaresTerm;
using trainer::Tensor;

namespace {

Tensor scalar(double v) {
  Tensor t = backend().allocate({1}, DType::f64);
  backend().copy_from_host(t, &v);
  return t;
}

double read(const Tensor& t) {
  double v = 0;
  backend().copy_to_host(&v, t);
  return v;
}

}  // namespace

TEST_CASE("accumulate_sum adds scale times the index-order sum", "[cpu][device_sums]") {
  auto& be = backend();
  std::mt19937 rng(61);
  const int N = 16391;
  const auto x = random_vector(N, rng, 0.0f, 11.0f);
  double rows = 0;
  for (float v : x) rows += v;  // as a model summing its per-row losses on the host
  Tensor acc = scalar(1.5);
  be.accumulate_sum(acc, upload(x, {N}), N, 2.0);
  CHECK(read(acc) == 1.5 + 2.0 * rows);
  be.accumulate_sum(acc, scalar(0.25), 1, 1.0);  // f64 values too
  CHECK(read(acc) == (1.5 + 2.0 * rows) + 0.25);
  CHECK_THROWS_WITH(be.accumulate_sum(zeros({1}), upload(x, {N}), N, 1.0),
                    Catch::Matchers::Contains("accumulate_sum: acc must be one f64 element"));
  CHECK_THROWS_WITH(be.accumulate_sum(acc, upload(x, {N}), N + 1, 1.0), Catch::Matchers::Contains("accumulate_sum: x"));
}

TEST_CASE("sum_squares_many is the ordered sum of the scaled terms", "[cpu][device_sums]") {
  auto& be = backend();
  std::mt19937 rng(62);
  std::vector<SquaresTerm> terms;
  double want = 0;
  int i = 0;
  for (int n : {1000003, 7, 8193, 1}) {
    Tensor x = upload(random_vector(static_cast<std::size_t>(n), rng), {n});
    const double scale = ++i % 2 ? 1.0 : 0.5;
    terms.push_back({x, scale});
    want += scale * be.sum_squares(x, n);
  }
  terms.push_back({Tensor(), 3.0});  // an empty term adds nothing
  Tensor out = scalar(std::numeric_limits<double>::quiet_NaN());
  be.sum_squares_many(out, terms);
  CHECK(read(out) == want);
  Tensor narrow = upload({std::numeric_limits<float>::quiet_NaN()}, {1});
  be.sum_squares_many(narrow, terms);
  CHECK(download(narrow)[0] == static_cast<float>(want));
  CHECK_THROWS_WITH(be.sum_squares_many(zeros({2}), terms), Catch::Matchers::Contains("sum_squares_many"));
}

TEST_CASE("convert between f64 and f32 rounds to nearest and widens exactly", "[cpu][device_sums]") {
  auto& be = backend();
  Tensor wide = be.allocate({3}, DType::f64);
  const double values[3] = {1.0 + std::ldexp(1.0, -24), 1.0 + 3.0 * std::ldexp(1.0, -24), 0.1};
  be.copy_from_host(wide, values);
  Tensor narrow = zeros({3});
  be.convert(narrow, wide);
  const auto got = download(narrow);
  CHECK(got[0] == 1.0f);                            // a tie: to even
  CHECK(got[1] == 1.0f + std::ldexp(1.0f, -22));   // a tie: to even
  CHECK(got[2] == 0.1f);
  be.convert(wide, narrow);
  double back[3];
  be.copy_to_host(back, wide);
  CHECK(back[2] == static_cast<double>(0.1f));
}
