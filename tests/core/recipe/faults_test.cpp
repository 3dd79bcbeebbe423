// The `faults` list and the `failure` section: strict validation with positions, defaults
// per item, cross-checks against the world and the run's steps, and parse_faults.
#include <catch2/catch.hpp>

#include "core/recipe/recipe_helpers.hpp"
#include "engine/trainer.hpp"

using namespace recipe_test;

TEST_CASE("faults: a list of maps, each with defaults filled", "[recipe][faults]") {
  TempDir dir;
  ConfigNode r;
  const auto errors = validate_file(dir.write("r.yaml", std::string(kMinimal) +
                                                            "faults:\n"
                                                            "  - {step: 3, kind: kill}\n"
                                                            "  - {step: 5, rank: 0, kind: slow, seconds: 0.5}\n"
                                                            "  - step: 7\n    kind: nan\n"),
                                    &r);
  INFO(trainer::recipe::format_diagnostics(errors));
  REQUIRE(errors.empty());
  const auto faults = trainer::parse_faults(r);
  REQUIRE(faults.size() == 3);
  CHECK(faults[0].step == 3);
  CHECK(faults[0].rank == 0);
  CHECK(faults[0].kind == trainer::Fault::Kind::kill);
  CHECK(faults[0].seconds == 1.0);
  CHECK(faults[1].kind == trainer::Fault::Kind::slow);
  CHECK(faults[1].seconds == 0.5);
  CHECK(faults[2].step == 7);
  CHECK(faults[2].kind == trainer::Fault::Kind::nan);
}

TEST_CASE("a hang fault, and faults that fire in every attempt", "[recipe][faults]") {
  TempDir dir;
  ConfigNode r;
  const auto errors = validate_file(dir.write("r.yaml", std::string(kMinimal) +
                                                            "faults:\n"
                                                            "  - {step: 3, kind: hang}\n"
                                                            "  - {step: 4, kind: kill, attempts: all}\n"),
                                    &r);
  INFO(trainer::recipe::format_diagnostics(errors));
  REQUIRE(errors.empty());
  const auto faults = trainer::parse_faults(r);
  REQUIRE(faults.size() == 2);
  CHECK(faults[0].kind == trainer::Fault::Kind::hang);
  CHECK_FALSE(faults[0].every_attempt);
  CHECK(faults[1].every_attempt);
  CHECK(trainer::faults_for_attempt(faults, 0).size() == 2);
  const auto later = trainer::faults_for_attempt(faults, 1);
  REQUIRE(later.size() == 1);
  CHECK(later[0].step == 4);
  const auto bad = validate_file(
      dir.write("s.yaml", std::string(kMinimal) + "faults: [{step: 3, kind: kill, attempts: some}]\n"));
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].message == "'faults[0].attempts' must be one of first, all; found 'some'");
}

TEST_CASE("faults are optional; failure defaults to abort", "[recipe][faults]") {
  TempDir dir;
  ConfigNode r;
  REQUIRE(validate_file(dir.write("r.yaml", kMinimal), &r).empty());
  CHECK_FALSE(r.has("faults"));
  CHECK(trainer::parse_faults(r).empty());
  CHECK(r.at("failure").at("plugin").text() == "abort");
  CHECK(r.at("failure").get_int("max_bad_steps") == 3);
}

TEST_CASE("failure: restart takes its keys with defaults", "[recipe][faults]") {
  TempDir dir;
  ConfigNode r;
  REQUIRE(validate_file(dir.write("r.yaml", std::string(kMinimal) + "failure: {plugin: restart, backoff_s: 0}\n"), &r)
              .empty());
  CHECK(r.at("failure").get_int("max_restarts") == 3);
  CHECK(r.at("failure").get_double("backoff_s") == 0.0);
  const auto bad = validate_file(dir.write("s.yaml", std::string(kMinimal) + "failure: {plugin: abort, max_restarts: 2}\n"));
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].message == "unknown key 'max_restarts' in section 'failure' (plugin abort)");
}

TEST_CASE("faults are validated strictly, each error at its position", "[recipe][faults]") {
  TempDir dir;
  const auto errors = validate_file(dir.write("r.yaml", std::string(kMinimal) +
                                                            "faults:\n"
                                                            "  - {step: 3, kind: melt}\n"
                                                            "  - {step: 0, kind: kill, when: 4}\n"
                                                            "  - {rank: 1}\n"
                                                            "  - kill\n"));
  INFO(trainer::recipe::format_diagnostics(errors));
  const auto& kind = only(errors, "kind' must be one of");
  CHECK_THAT(kind.message, Catch::StartsWith("'faults[0].kind' must be one of kill, nan, slow, ") &&
                               Catch::Contains("hang") && Catch::EndsWith("; found 'melt'"));
  CHECK(at(kind) == "6:15");
  const auto& step = only(errors, "faults[1].step");
  CHECK(step.message == "'faults[1].step' must be at least 1, found 0");
  const auto& unknown = only(errors, "unknown key");
  CHECK(unknown.message == "unknown key 'when' in section 'faults[1]'");
  CHECK(at(unknown) == "7:27");
  const auto& missing_step = only(errors, "missing required key 'step'");
  CHECK(missing_step.message == "missing required key 'step' in section 'faults[2]'");
  const auto& missing_kind = only(errors, "missing required key 'kind'");
  CHECK(at(missing_kind) == "8:5");
  const auto& not_map = only(errors, "must be a map");
  CHECK(not_map.message == "'faults[3]' must be a map, found 'kill'");
  CHECK(at(not_map) == "9:5");
}

TEST_CASE("faults must be a list", "[recipe][faults]") {
  TempDir dir;
  const auto errors = validate_file(dir.write("r.yaml", std::string(kMinimal) + "faults: {step: 3, kind: kill}\n"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "section 'faults' must be a list of maps, found a map");
}

TEST_CASE("a fault must hit a rank of the job and a step of the run", "[recipe][faults]") {
  TempDir dir;
  const auto errors = validate_file(dir.write("r.yaml", std::string(kMinimal) +
                                                            "launch: {nproc: 2}\n"
                                                            "faults:\n"
                                                            "  - {step: 11, rank: 2, kind: kill}\n"));
  REQUIRE(errors.size() == 2);
  const auto& rank = only(errors, "rank 2");
  CHECK(rank.message == "faults[0].rank 2 is not a rank of this job (world size 2)");
  CHECK(rank.hint == "ranks are 0 to 1");
  const auto& step = only(errors, "step 11");
  CHECK(step.message == "faults[0].step 11 is after the last step (train.steps 10)");
}
