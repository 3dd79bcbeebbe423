// embedding: out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]; backward accumulates dwte and dwpe.
#include <array>
#include <catch2/catch.hpp>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::Tensor;

namespace {

std::vector<std::int32_t> random_tokens(int n, int V, std::mt19937& rng) {
  std::uniform_int_distribution<std::int32_t> d(0, V - 1);
  std::vector<std::int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

}  // namespace

TEST_CASE("embedding_forward adds token and position rows", "[cpu][embedding]") {
  std::mt19937 rng(21);
  const int B = 3, T = 5, C = 8, V = 11, maxT = 7;
  const auto tokens = random_tokens(B * T, V, rng);
  const auto wte = random_vector(V * C, rng), wpe = random_vector(maxT * C, rng);
  Tensor out = zeros({B, T, C});
  backend().embedding_forward(out, upload_i32(tokens, {B, T}), upload(wte, {V, C}), upload(wpe, {maxT, C}), B, T, C);
  const auto got = download(out);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c)
        REQUIRE(got[(b * T + t) * C + c] == wte[tokens[b * T + t] * C + c] + wpe[t * C + c]);
}

TEST_CASE("embedding_backward matches finite differences and accumulates", "[cpu][embedding]") {
  auto& be = backend();
  std::mt19937 rng(22);
  for (auto [B, T, C, V] : {std::array{2, 6, 10, 5}, std::array{16, 64, 96, 50}}) {
    const int maxT = T + 2;
    const auto tokens = random_tokens(B * T, V, rng);  // a small V makes rows repeat
    auto wte = random_vector(V * C, rng), wpe = random_vector(maxT * C, rng);
    const auto R = random_vector(B * T * C, rng);
    Tensor tok = upload_i32(tokens, {B, T});
    auto loss = [&] {
      Tensor out = zeros({B, T, C});
      be.embedding_forward(out, tok, upload(wte, {V, C}), upload(wpe, {maxT, C}), B, T, C);
      return dot(download(out), R);
    };
    Tensor dwte = zeros({V, C}), dwpe = zeros({maxT, C}), dout = upload(R, {B, T, C});
    be.embedding_backward(dwte, dwpe, dout, tok, B, T, C);
    const auto g_wte = download(dwte), g_wpe = download(dwpe);
    check_gradient("dwte", wte, g_wte, loss, rng, with_atol(1e-2));
    check_gradient("dwpe", wpe, g_wpe, loss, rng, with_atol(1e-2));
    for (int i = T * C; i < maxT * C; ++i) REQUIRE(g_wpe[i] == 0.0f);

    Tensor dwte2 = zeros({V, C}), dwpe2 = zeros({maxT, C});
    be.embedding_backward(dwte2, dwpe2, dout, tok, B, T, C);
    CHECK(bitwise_equal(download(dwte2), g_wte));
    CHECK(bitwise_equal(download(dwpe2), g_wpe));
    be.embedding_backward(dwte2, dwpe2, dout, tok, B, T, C);
    const auto a_wte = download(dwte2), a_wpe = download(dwpe2);
    for (std::size_t i = 0; i < a_wte.size(); ++i) REQUIRE(a_wte[i] == Approx(2.0f * g_wte[i]).margin(1e-5));
    for (std::size_t i = 0; i < a_wpe.size(); ++i) REQUIRE(a_wpe[i] == Approx(2.0f * g_wpe[i]).margin(1e-5));

    Tensor out1 = zeros({B, T, C}), out2 = zeros({B, T, C});
    be.embedding_forward(out1, tok, upload(wte, {V, C}), upload(wpe, {maxT, C}), B, T, C);
    be.embedding_forward(out2, tok, upload(wte, {V, C}), upload(wpe, {maxT, C}), B, T, C);
    CHECK(bitwise_equal(download(out1), download(out2)));
  }
}

TEST_CASE("embedding rejects bad shapes and tokens", "[cpu][embedding]") {
  auto& be = backend();
  using Catch::Matchers::Contains;
  Tensor out = zeros({2, 3, 4}), wte = zeros({5, 4}), wpe = zeros({3, 4});
  Tensor tok = upload_i32({0, 1, 2, 3, 4, 0}, {2, 3});
  CHECK_THROWS_AS(be.embedding_forward(zeros({2, 3, 5}), tok, wte, wpe, 2, 3, 4), std::invalid_argument);
  CHECK_THROWS_WITH(be.embedding_forward(zeros({2, 3, 5}), tok, wte, wpe, 2, 3, 4), Contains("embedding_forward"));
  CHECK_THROWS_WITH(be.embedding_forward(out, tok, wte, zeros({2, 4}), 2, 3, 4), Contains("wpe"));
  CHECK_THROWS_WITH(be.embedding_forward(out, upload_i32({0, 1, 2, 3, 5, 0}, {2, 3}), wte, wpe, 2, 3, 4),
                    Contains("vocabulary"));
  CHECK_THROWS_WITH(be.embedding_backward(wte, wpe, out, zeros({2, 3}), 2, 3, 4), Contains("embedding_backward"));
}
