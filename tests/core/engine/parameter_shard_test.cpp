// Tensor-parallel shards of a parameter start from their slice of the whole tensor's
// initialization (ParameterSpec::global/split_dim), so every tp degree trains the same model;
// shard_spec refuses a split that does not divide.
#include <catch2/catch.hpp>

#include "support/plugins.hpp"
#include "trainer/parameters.hpp"
#include "trainer/tensor_parallel.hpp"

using namespace trainer;

namespace {

ParameterSpec normal(const std::string& name, Shape shape) {
  ParameterSpec p;
  p.name = name;
  p.shape = std::move(shape);
  p.init = ParameterSpec::Init::normal;
  p.init_std = 0.02f;
  return p;
}

std::vector<float> initial(Backend& be, const ParameterSpec& spec) {
  ParameterStore store(be, {spec});
  return store.initial_values(0, 11);
}

}  // namespace

TEST_CASE("a tp shard holds its slice of the whole tensor's initial values", "[engine][tp]") {
  auto backend = test::make_plugin<Backend>(PluginKind::backend, "cpu");
  const std::int64_t C = 4;
  SECTION("rows: [V, C] split on dim 0") {
    const auto whole = initial(*backend, normal("wte", {6, C}));
    for (int r = 0; r < 3; ++r) {
      const auto part = initial(*backend, shard_spec(normal("wte", {6, C}), {6, C}, 0, {2, C}, r, 3));
      REQUIRE(part.size() == 2 * C);
      for (std::size_t j = 0; j < part.size(); ++j) CHECK(part[j] == whole[static_cast<std::size_t>(r) * 2 * C + j]);
    }
  }
  SECTION("columns: [C, 2C] split on dim 1") {
    const auto whole = initial(*backend, normal("proj", {C, 2 * C}));
    for (int r = 0; r < 2; ++r) {
      const auto part = initial(*backend, shard_spec(normal("proj", {C, 2 * C}), {C, 2 * C}, 1, {C, C}, r, 2));
      for (std::int64_t i = 0; i < C; ++i) {
        for (std::int64_t j = 0; j < C; ++j) {
          CHECK(part[static_cast<std::size_t>(i * C + j)] == whole[static_cast<std::size_t>(i * 2 * C + r * C + j)]);
        }
      }
    }
  }
  SECTION("qkv: [3C, C] seen as [3, C, C], each of q, k, v split by heads") {
    const auto whole = initial(*backend, normal("qkv", {3 * C, C}));
    for (int r = 0; r < 2; ++r) {
      const auto part = initial(*backend, shard_spec(normal("qkv", {3 * C, C}), {3, C, C}, 1, {3 * C / 2, C}, r, 2));
      for (std::int64_t q = 0; q < 3; ++q) {          // q, k, v
        for (std::int64_t row = 0; row < C / 2; ++row) {  // this rank's rows of each
          for (std::int64_t j = 0; j < C; ++j) {
            const auto global_row = q * C + r * (C / 2) + row;
            CHECK(part[static_cast<std::size_t>((q * (C / 2) + row) * C + j)] ==
                  whole[static_cast<std::size_t>(global_row * C + j)]);
          }
        }
      }
    }
  }
}

TEST_CASE("shard_spec refuses a split that does not divide; replicated_spec shares the norm", "[engine][tp]") {
  CHECK_THROWS_AS(shard_spec(normal("w", {6, 4}), {6, 4}, 0, {2, 4}, 0, 4), std::invalid_argument);
  CHECK_THROWS_AS(shard_spec(normal("w", {6, 4}), {6, 5}, 0, {3, 4}, 0, 2), std::invalid_argument);
  const auto same = shard_spec(normal("w", {6, 4}), {6, 4}, 0, {6, 4}, 0, 1);
  CHECK(same.global.empty());
  CHECK(replicated_spec(normal("b", {4}), 4).grad_norm_share == 0.25f);
  CHECK(replicated_spec(normal("b", {4}), 1).grad_norm_share == 1.0f);
}
