// ParameterStore's bf16 compute copies (mixed precision), on the cpu backend: the copy holds
// the f32 master values rounded to bf16, is refreshed only when stale, follows the values'
// release and materialisation, and is counted in the resident bytes.
#include <catch2/catch.hpp>

#include "engine/optimizer_copies.hpp"
#include "support/plugins.hpp"
#include "trainer/bf16.hpp"
#include "trainer/optimizer.hpp"
#include "trainer/parameters.hpp"

using namespace trainer;

namespace {

std::vector<ParameterSpec> specs() {
  using I = ParameterSpec::Init;
  std::vector<ParameterSpec> p(3);
  p[0].name = "emb";
  p[0].shape = {5, 3};
  p[0].init = I::normal;
  p[0].init_std = 0.5f;
  p[1].name = "h.0.w";
  p[1].shape = {4};
  p[1].block = 0;
  p[1].init = I::normal;
  p[1].init_std = 1.0f;
  p[2].name = "h.0.b";
  p[2].shape = {2};
  p[2].block = 0;
  p[2].init = I::ones;
  return p;
}

std::vector<float> host_bf16(Backend& be, const Tensor& t) {
  std::vector<std::uint16_t> bits(static_cast<std::size_t>(t.numel()));
  be.copy_to_host(bits.data(), t);
  std::vector<float> out;
  for (auto b : bits) out.push_back(bf16_to_f32(b));
  return out;
}

std::vector<float> host_f32(Backend& be, const Tensor& t) {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  be.copy_to_host(out.data(), t);
  return out;
}

}  // namespace

TEST_CASE("ParameterStore keeps bf16 compute copies of its f32 values", "[engine][precision]") {
  auto backend = test::make_plugin<Backend>(PluginKind::backend, "cpu");
  ParameterStore store(*backend, specs());
  store.initialize(3);
  const std::size_t f32_bytes = store.resident_bytes();
  CHECK(store.compute_dtype() == DType::f32);
  CHECK(store.compute_value(1).data() == store.value(1).data());  // f32: the value itself

  store.set_compute_dtype(DType::bf16);
  CHECK(store.resident_bytes() == f32_bytes + 2 * static_cast<std::size_t>(store.numel()));
  REQUIRE(store.compute_value(0).dtype() == DType::bf16);
  CHECK(store.compute_value(0).shape() == Shape{5, 3});

  store.refresh_compute_block(-1);
  store.refresh_compute_block(0);
  for (std::size_t i = 0; i < store.size(); ++i) {
    const auto want = host_f32(*backend, store.value(i));
    const auto got = host_bf16(*backend, store.compute_value(i));
    for (std::size_t j = 0; j < want.size(); ++j) CHECK(got[j] == round_to_bf16(want[j]));
  }

  // A changed value shows in the copy only after invalidate + refresh.
  const std::vector<float> changed{7.0f, 8.0f, 9.0f, 10.0f};
  backend->copy_from_host(store.value(1), changed.data());
  store.refresh_compute(store.unit_of(1));
  CHECK(host_bf16(*backend, store.compute_value(1))[0] != 7.0f);  // still fresh: not redone
  store.invalidate_compute();
  store.refresh_compute_block(0);
  CHECK(host_bf16(*backend, store.compute_value(1)) == changed);

  // Releasing a unit's values releases its copy; materialising brings a stale one back.
  const std::size_t before = store.resident_bytes();
  store.release_values(store.unit_of(1));
  CHECK(!store.compute_value(1));
  CHECK(store.resident_bytes() == before - 6 * (4 + 2));
  store.materialize_values(store.unit_of(1));
  const std::vector<float> again{1.5f, 2.5f, 3.5f, 4.5f, 0.25f, 0.5f};
  backend->copy_from_host(store.unit_values(store.unit_of(1)), again.data());
  store.refresh_compute_block(0);
  CHECK(host_bf16(*backend, store.compute_value(2)) == std::vector<float>{0.25f, 0.5f});
  CHECK(store.resident_bytes() == before);
}

// After a step of an optimizer that writes the copies itself, the trainer refreshes only the
// units it cannot vouch for: units_written_by says which. A unit counts only when every one of
// its parameters is a whole target carrying the store's own copy of that parameter.
TEST_CASE("units_written_by trusts a unit only when the targets carry all its copies", "[engine][precision]") {
  auto backend = test::make_plugin<Backend>(PluginKind::backend, "cpu");
  ParameterStore store(*backend, specs());
  store.initialize(3);
  const auto whole = [&](std::size_t i, bool copy) {
    return OptimizerTarget{store.spec(i).name, store.value(i), store.grad(i), false,
                           copy ? store.compute_value(i) : Tensor()};
  };
  REQUIRE(store.units().size() == 2);  // {emb}, {h.0.w, h.0.b}

  // f32 compute: the "copy" is the value itself, nothing to skip.
  CHECK(units_written_by(store, {whole(0, true), whole(1, true), whole(2, true)}) == std::vector<bool>{false, false});

  store.set_compute_dtype(DType::bf16);
  CHECK(units_written_by(store, {whole(0, true), whole(1, true), whole(2, true)}) == std::vector<bool>{true, true});
  // A parameter without its copy, or missing, leaves its unit to the refresh.
  CHECK(units_written_by(store, {whole(0, true), whole(1, true), whole(2, false)}) == std::vector<bool>{true, false});
  CHECK(units_written_by(store, {whole(0, true), whole(1, true)}) == std::vector<bool>{true, false});
  // A slice of a parameter (a sharded layout's target) does not vouch for the whole copy.
  OptimizerTarget slice{store.spec(0).name + "[0:6]", store.value(0).view(0, {6}), store.grad(0).view(0, {6}), false,
                        store.compute_value(0).view(0, {6})};
  CHECK(units_written_by(store, {slice, whole(1, true), whole(2, true)}) == std::vector<bool>{false, true});
  // Another tensor than the store's own copy does not either.
  OptimizerTarget other = whole(1, true);
  other.compute = backend->allocate({4}, DType::bf16);
  CHECK(units_written_by(store, {whole(0, true), other, whole(2, true)}) == std::vector<bool>{true, false});
}
