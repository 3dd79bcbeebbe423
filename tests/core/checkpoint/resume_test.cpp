// Resuming a single-process Trainer: a run stopped after step k and resumed from its
// checkpoint continues bitwise like the run that was never stopped.
#include <catch2/catch.hpp>

#include "checkpoint/checkpoint_reader.hpp"
#include "engine/trainer.hpp"
#include "support/recipes.hpp"

using namespace trainer;

TEST_CASE("a resumed run continues bitwise like an uninterrupted one", "[resume]") {
  test::RecipeDir dir("ckpt-resume");
  const std::vector<std::string> common{"train.steps=6", "model.dropout=0.1", "checkpoint.every=2",
                                        "checkpoint.dir=" + (dir.path() / "ckpt").string()};
  TrainerOptions quiet{true, false, {}};

  // Uninterrupted (and not saving: resume never, every 0).
  std::vector<double> whole;
  std::vector<float> whole_params;
  {
    auto o = common;
    o.push_back("checkpoint.every=0");
    o.push_back("checkpoint.resume=never");
    Trainer t(dir.tiny_recipe(o), quiet);
    for (int s = 0; s < 6; ++s) whole.push_back(t.train_step().loss);
    whole_params = t.parameters_to_host();
  }
  // Interrupted after step 3: the newest checkpoint is step 2.
  {
    TrainerOptions stop = quiet;
    stop.stop_after = 3;
    Trainer t(dir.tiny_recipe(common), stop);
    CHECK(t.next_step() == 0);
    t.run();
    CHECK(t.next_step() == 3);
  }
  std::vector<std::string> warnings;
  const auto found = checkpoint::find_latest_good(dir.path() / "ckpt", warnings);
  REQUIRE(found);
  CHECK(found->manifest.step == 2);
  CHECK(found->manifest.find("params/wte"));
  CHECK(found->manifest.find("optimizer/adam_m/wte"));
  CHECK(found->manifest.find("optimizer/adam_v/wte"));

  Trainer resumed(dir.tiny_recipe(common), quiet);
  REQUIRE(resumed.next_step() == 2);
  for (int s = 2; s < 6; ++s) {
    const auto r = resumed.train_step();
    CHECK(r.step == s);
    CHECK(r.loss == whole[static_cast<std::size_t>(s)]);  // bitwise
  }
  CHECK(resumed.parameters_to_host() == whole_params);
}

TEST_CASE("resume: never starts afresh beside existing checkpoints", "[resume]") {
  test::RecipeDir dir("ckpt-never");
  const std::vector<std::string> common{"train.steps=2", "checkpoint.every=1",
                                        "checkpoint.dir=" + (dir.path() / "ckpt").string()};
  {
    Trainer t(dir.tiny_recipe(common), TrainerOptions{true, false, {}});
    t.run();
  }
  auto o = common;
  o.push_back("checkpoint.resume=never");
  Trainer fresh(dir.tiny_recipe(o), TrainerOptions{true, false, {}});
  CHECK(fresh.next_step() == 0);
  Trainer again(dir.tiny_recipe(common), TrainerOptions{true, false, {}});
  CHECK(again.next_step() == 2);
}
