// Rules across sections: batch arithmetic, learning rates, warmup, precision/backend.
#include <catch2/catch.hpp>

#include "core/recipe/recipe_helpers.hpp"

using namespace recipe_test;

namespace {
std::string recipe(const std::string& train_extra, const std::string& rest = "") {
  return "data:\n  train: t\ntrain:\n  steps: 100\n" + train_extra + rest;
}
}  // namespace

TEST_CASE("global_batch must be a multiple of micro_batch × dp", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", recipe("  micro_batch: 32\n  global_batch: 48\n"));
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "global_batch 48 is not a multiple of micro_batch 32 × data-parallel degree 1");
  CHECK(errors[0].hint == "set global_batch to 32 or 64, or micro_batch to 24");
  CHECK(errors[0].origin.to_string() == file.generic_string() + ":6:3");
}

TEST_CASE("the data-parallel degree comes from parallel.dp", "[recipe]") {
  TempDir dir;
  const auto errors = validate_file(
      dir.write("r.yaml", recipe("  micro_batch: 8\n  global_batch: 24\n", "parallel:\n  dp: 2\nlaunch:\n  nproc: 2\n")));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "global_batch 24 is not a multiple of micro_batch 8 × data-parallel degree 2");
  CHECK(errors[0].hint == "set global_batch to 16 or 32, or micro_batch to 6");

  const auto small = validate_file(
      dir.write("s.yaml", recipe("  micro_batch: 8\n  global_batch: 3\n", "parallel:\n  dp: 2\nlaunch:\n  nproc: 2\n")));
  REQUIRE(small.size() == 1);
  CHECK(small[0].hint == "set global_batch to 16");
}

TEST_CASE("global_batch defaults to micro_batch × dp", "[recipe]") {
  TempDir dir;
  ConfigNode r;
  REQUIRE(validate_file(dir.write("r.yaml", recipe("  micro_batch: 4\n", "parallel:\n  dp: 3\nlaunch:\n  nproc: 3\n")), &r).empty());
  CHECK(r.at("train").get_int("global_batch") == 12);
  CHECK(r.at("train").at("global_batch").origin().file == "<default>");
}

TEST_CASE("min_lr may not exceed lr, nor warmup the run", "[recipe]") {
  TempDir dir;
  const auto file = dir.write(
      "r.yaml", recipe("", "optimizer:\n  lr: 1e-4\n  min_lr: 1e-3\n  warmup_steps: 500\n"));
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 2);
  const auto& lr = only(errors, "min_lr");
  CHECK(lr.message == "optimizer.min_lr 1e-3 is greater than optimizer.lr 1e-4");
  CHECK(at(lr) == "7:3");
  const auto& warmup = only(errors, "warmup");
  CHECK(warmup.message == "optimizer.warmup_steps 500 exceeds train.steps 100");
  CHECK(at(warmup) == "8:3");
}

TEST_CASE("eval_every and log_every must be at least 1", "[recipe]") {
  TempDir dir;
  const auto errors = validate_file(dir.write("r.yaml", recipe("  eval_every: 0\n  log_every: 0\n")));
  REQUIRE(errors.size() == 2);
  CHECK(only(errors, "eval_every").message == "'train.eval_every' must be at least 1, found 0");
  CHECK(only(errors, "log_every").message == "'train.log_every' must be at least 1, found 0");
}

TEST_CASE("bf16 needs the cuda backend", "[recipe]") {
  TempDir dir;
  const auto file = dir.write("r.yaml", recipe("", "precision: bf16\n"));
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "precision bf16 requires the cuda backend, but backend is 'cpu'");
  CHECK(errors[0].hint == "use precision: f32 on the cpu backend, or backend: cuda");
  CHECK(at(errors[0]) == "5:1");
  CHECK(validate_file(file, nullptr, {"backend=cuda"}).empty());
}

TEST_CASE("values the schema rejected are not reported again by the checks", "[recipe]") {
  TempDir dir;
  const auto errors = validate_file(dir.write("r.yaml", recipe("  micro_batch: lots\n  global_batch: 48\n")));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "'train.micro_batch' must be an integer, found 'lots'");
}

TEST_CASE("the mesh must match the world; dp: auto takes what is left", "[recipe]") {
  TempDir dir;
  ConfigNode r;
  REQUIRE(validate_file(dir.write("a.yaml", recipe("  micro_batch: 4\n", "launch:\n  nproc: 4\n")), &r).empty());
  CHECK(r.at("parallel").get_int("dp") == 4);
  CHECK(r.at("train").get_int("global_batch") == 16);

  const auto file = dir.write("b.yaml", recipe("  micro_batch: 4\n", "parallel:\n  dp: 3\nlaunch:\n  nproc: 4\n"));
  const auto errors = validate_file(file);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "dp 3 × tp 1 × pp 1 = 3 does not match the world size 4 (launch.nproc 4 × launch.nnodes 1)");
  CHECK(errors[0].hint == "use dp: auto, or launch 3 processes");

  ConfigNode t;
  REQUIRE(validate_file(dir.write("c.yaml", recipe("  micro_batch: 4\n", "parallel:\n  tp: 2\nlaunch:\n  nproc: 4\n")), &t)
              .empty());
  CHECK(t.at("parallel").get_int("dp") == 2);
  CHECK(t.at("train").get_int("global_batch") == 8);
}

TEST_CASE("tensor parallel: the heads must divide by tp; sequence parallel refuses dropout", "[recipe]") {
  // The fake gpt of these tests has n_head and dropout; d_model, vocab and seq_len get the
  // same check (tests/apps/tensor_parallel_sweep_test.sh runs it with the real plugin).
  TempDir dir;
  const auto file =
      dir.write("tp.yaml", recipe("  micro_batch: 4\n", "model:\n  n_head: 4\nparallel:\n  tp: 3\nlaunch:\n  nproc: 3\n"));
  const auto errors = validate_file(file);
  INFO(trainer::recipe::format_diagnostics(errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message ==
        "model.n_head 4 is not divisible by parallel.tp 3: tensor parallel splits the attention heads over the tp ranks");
  CHECK(errors[0].hint == "make model.n_head a multiple of 3, or change parallel.tp");
  CHECK(errors[0].origin.to_string() == file.generic_string() + ":7:3");

  const auto sp = validate_file(dir.write("sp.yaml", recipe("  micro_batch: 4\n",
                                                            "model:\n  n_head: 4\n  dropout: 0.1\n"
                                                            "parallel:\n  tp: 4\n  sequence_parallel: true\n"
                                                            "launch:\n  nproc: 4\n")));
  INFO(trainer::recipe::format_diagnostics(sp));
  REQUIRE(sp.size() == 1);
  CHECK(sp[0].message.rfind("model.dropout 0.1 with parallel.sequence_parallel", 0) == 0);
}
