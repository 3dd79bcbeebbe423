// The single-rank training loop: gradient accumulation is invisible in the result, samples
// depend on global positions only, losses fall, and every step is recorded.
#include <catch2/catch.hpp>
#include <fstream>

#include "engine/trainer.hpp"
#include "support/recipes.hpp"

using namespace trainer;

namespace {

std::vector<double> losses(const ConfigNode& recipe, int steps) {
  Trainer t(recipe, TrainerOptions{true, false, {}});
  std::vector<double> out;
  for (int s = 0; s < steps; ++s) out.push_back(t.train_step().loss);
  return out;
}

}  // namespace

TEST_CASE("gradient accumulation gives the losses of one big micro-batch", "[trainer]") {
  test::RecipeDir dir("accumulation");
  const auto whole = losses(dir.tiny_recipe({"train.micro_batch=8", "train.global_batch=8"}), 4);
  const auto split = losses(dir.tiny_recipe({"train.micro_batch=2", "train.global_batch=8"}), 4);
  REQUIRE(whole.size() == split.size());
  // Same samples, same arithmetic up to the order of summation.
  for (std::size_t i = 0; i < whole.size(); ++i) CHECK(split[i] == Approx(whole[i]).epsilon(1e-5));
}

TEST_CASE("the same recipe and seed give bitwise the same run; another seed does not", "[trainer]") {
  test::RecipeDir dir("determinism");
  const auto a = losses(dir.tiny_recipe(), 3);
  const auto b = losses(dir.tiny_recipe(), 3);
  CHECK(a == b);
  const auto c = losses(dir.tiny_recipe({"train.seed=99"}), 3);
  CHECK(c != a);
}

TEST_CASE("a run learns, evaluates, and writes metrics.jsonl and the resolved recipe", "[trainer]") {
  test::RecipeDir dir("run");
  auto recipe = dir.tiny_recipe({"train.steps=60", "train.eval_every=30"});
  Trainer t(recipe, TrainerOptions{true, true, {}});
  const auto summary = t.run();
  CHECK(summary.steps == 60);
  REQUIRE(summary.final_val_loss.has_value());
  REQUIRE(summary.entropy_floor.has_value());
  CHECK(*summary.final_val_loss < std::log(32.0) - 0.5);  // well below chance
  // The best of the two evaluations (steps 30 and 60) is kept beside the last.
  REQUIRE(summary.best_val_loss.has_value());
  CHECK(*summary.best_val_loss <= *summary.final_val_loss);
  CHECK((summary.best_val_step == 30 || summary.best_val_step == 60));
  if (summary.best_val_step == 60) CHECK(*summary.best_val_loss == *summary.final_val_loss);
  CHECK(summary.memory.optimizer_state == 2 * summary.memory.parameters);
  CHECK(summary.memory.gradients == summary.memory.parameters);
  CHECK(summary.memory.activations.saved_peak > 0);

  std::ifstream metrics(dir.path() / "run" / "metrics.jsonl");
  std::string line;
  int steps = 0, evals = 0, summaries = 0;
  while (std::getline(metrics, line)) {
    steps += line.find("\"event\":\"step\"") != std::string::npos;
    evals += line.find("\"event\":\"eval\"") != std::string::npos;
    summaries += line.find("\"event\":\"summary\"") != std::string::npos;
  }
  CHECK(steps == 60);
  CHECK(evals == 2);
  CHECK(summaries == 1);
  // The recorded recipe resolves again to a runnable recipe.
  CHECK_NOTHROW(load_and_validate_recipe(dir.path() / "run" / "recipe.yaml", {}));
}

TEST_CASE("data that does not fit the model's vocabulary is refused before training", "[trainer]") {
  test::RecipeDir dir("vocab");
  auto recipe = dir.tiny_recipe({"model.vocab=16"});
  CHECK_THROWS_WITH(Trainer(recipe, TrainerOptions{true, false, {}}), Catch::Contains("raise model.vocab"));
}
