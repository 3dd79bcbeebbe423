// Recompute policies trade memory for compute and nothing else: the same losses and
// gradients, bit for bit, with dropout on, and less activation memory held for backward.
#include <catch2/catch.hpp>

#include "engine/trainer.hpp"
#include "support/recipes.hpp"

using namespace trainer;

namespace {

struct Trace {
  std::vector<double> losses;
  std::vector<std::vector<float>> grads;
  std::vector<float> final_params;
  std::size_t activation_peak = 0;
};

Trace run(const test::RecipeDir& dir, const std::string& recompute) {
  auto recipe = dir.tiny_recipe({"recompute=" + recompute, "model.n_layer=4", "model.d_model=32",
                                 "model.dropout=0.1", "train.steps=3", "model.seq_len=32"});
  Trainer t(recipe, TrainerOptions{true, false, {}});
  Trace trace;
  for (int s = 0; s < 3; ++s) {
    const auto r = t.train_step();
    trace.losses.push_back(r.loss);
    trace.grads.push_back(t.parameters().grads_to_host());
  }
  trace.final_params = t.parameters_to_host();
  trace.activation_peak = t.memory().activations.saved_peak;
  return trace;
}

}  // namespace

TEST_CASE("full and selective recompute give bitwise the losses and gradients of none", "[recompute]") {
  test::RecipeDir dir("recompute");
  const Trace none = run(dir, "none");
  for (const std::string policy : {"full", "selective", "{plugin: full, every: 2}"}) {
    INFO("recompute " << policy);
    const Trace other = run(dir, policy);
    CHECK(other.losses == none.losses);
    for (std::size_t s = 0; s < 3; ++s) CHECK(other.grads[s] == none.grads[s]);
    CHECK(other.final_params == none.final_params);
  }
  // Dropout is on, so the losses differ from step to step for real.
  CHECK(none.losses[0] != none.losses[1]);
}

TEST_CASE("recompute lowers the peak of saved activations", "[recompute]") {
  test::RecipeDir dir("recompute-memory");
  const auto none = run(dir, "none").activation_peak;
  const auto full = run(dir, "full").activation_peak;
  const auto every2 = run(dir, "{plugin: full, every: 2}").activation_peak;
  const auto selective = run(dir, "selective").activation_peak;
  INFO("none " << none << " B, full " << full << " B, full every 2 " << every2 << " B, selective " << selective << " B");
  CHECK(full <= 0.4 * static_cast<double>(none));  // at least a 60% drop on 4 blocks
  CHECK(every2 < none);
  CHECK(full < every2);
  CHECK(selective < none);
  CHECK(full < selective);
}
