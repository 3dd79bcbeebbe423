// Reading metrics.jsonl generically: steps, evals, the summary, fields added later, bad lines.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/sweep/sweep_helpers.hpp"

using namespace sweep_test;
using namespace trainer::sweep;

TEST_CASE("steps, evals and the summary are read with every field", "[sweep]") {
  TempDir dir;
  const auto m = metrics(dir, "m.jsonl", metrics_text({4.5, 4.25, 4.0}, 3.75, 123456, ",\"comm\":{\"allreduce_s\":0.25}"));
  CHECK(m.problems.empty());
  REQUIRE(m.steps.size() == 3);
  CHECK(m.evals.size() == 1);
  REQUIRE(m.summary);
  CHECK(m.summary_number("activation_peak_bytes") == 123456.0);
  CHECK(m.summary_number("comm.allreduce_s") == 0.25);  // nested objects flatten to dotted keys
  CHECK_FALSE(m.summary_field("absent"));
  const auto losses = m.series("step_losses");
  REQUIRE(losses);
  CHECK(losses->values == std::vector<double>{4.5, 4.25, 4.0});
  CHECK(losses->steps == std::vector<std::int64_t>{1, 2, 3});
  CHECK(m.series("val_losses")->values == std::vector<double>{3.75});
  CHECK(m.series("step.grad_norm")->values.size() == 3);
  CHECK(m.series("eval.val_loss")->values == std::vector<double>{3.75});
  CHECK_FALSE(m.series("step.nothing"));
  CHECK_FALSE(m.series("final_loss"));
}

TEST_CASE("JSON values of every kind", "[sweep]") {
  const auto r = parse_json_line(
      R"({"s":"a\"b\\c\u00e9","n":-1.5e-3,"t":true,"f":false,"z":null,"l":[1,{"x":"]"}],"o":{"p":{"q":2}}})");
  REQUIRE(r);
  CHECK(r->at("s").text == "a\"b\\c\xc3\xa9");
  CHECK(r->at("n").number == -1.5e-3);
  CHECK(r->at("t").kind == JsonValue::Kind::boolean);
  CHECK(r->at("t").number == 1);
  CHECK(r->at("z").kind == JsonValue::Kind::null);
  CHECK(r->at("l").kind == JsonValue::Kind::other);
  CHECK(r->at("l").text == R"([1,{"x":"]"}])");
  CHECK(r->at("o.p.q").number == 2);
  std::string error;
  CHECK_FALSE(parse_json_line(R"({"a":1)", &error));
  CHECK(!error.empty());
  CHECK_FALSE(parse_json_line(R"({"a":1} x)"));
  CHECK_FALSE(parse_json_line(R"({"a":nope})"));
}

TEST_CASE("null losses read as NaN; broken lines are problems; a missing file is empty", "[sweep]") {
  TempDir dir;
  const auto m = metrics(dir, "m.jsonl",
                         "{\"event\":\"step\",\"step\":1,\"loss\":null}\n\n{\"event\":\"step\",\"step\":2,\"lo\n");
  REQUIRE(m.steps.size() == 1);
  CHECK(std::isnan(m.series("step_losses")->values[0]));
  REQUIRE(m.problems.size() == 1);
  CHECK(m.problems[0].starts_with("line 3: "));
  CHECK_FALSE(m.summary);
  const auto none = read_metrics(dir.path() / "absent.jsonl");
  CHECK(none.steps.empty());
  CHECK(none.problems.empty());
}
