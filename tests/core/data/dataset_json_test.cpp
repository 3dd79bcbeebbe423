// dataset.json: the minimal writer/reader for the flat manifest next to the shards.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "data/dataset_json.hpp"

using namespace trainer::data;

TEST_CASE("the dataset.json reader handles the flat objects it is meant for", "[data][dataset_json]") {
  const auto j = parse_flat_json(
      R"({"s": "a\"b\\c\n\u00e9", "n": -1.5e3, "i": 18446744073709551615, "t": true, "z": null, "a": [1, "x"]})");
  REQUIRE(j.at("s").text == "a\"b\\c\n\xC3\xA9");
  REQUIRE(j.at("n").as_number() == -1500.0);
  REQUIRE(j.at("i").text == "18446744073709551615");  // exact digits kept for 64-bit seeds
  REQUIRE(j.at("t").kind == JsonValue::Kind::boolean);
  REQUIRE(j.at("z").kind == JsonValue::Kind::null);
  REQUIRE(j.at("a").items.size() == 2);
  REQUIRE(parse_flat_json("{}").empty());
  REQUIRE_THROWS_WITH(parse_flat_json(R"({"a": {"b": 1}})"), Catch::Contains("nested"));
  REQUIRE_THROWS_WITH(parse_flat_json(R"({"a": 1)"), Catch::Contains("malformed JSON"));
  REQUIRE_THROWS_AS(parse_flat_json(R"({"a": 1} x)"), std::runtime_error);
  REQUIRE_THROWS_AS(parse_flat_json(R"({"a": +1})"), std::runtime_error);

  JsonObjectWriter w;
  w.add_string("k", "q\"uote").add_number("x", 0.1).add_unsigned("u", 18446744073709551615ull);
  const auto back = parse_flat_json(w.str());
  REQUIRE(back.at("k").text == "q\"uote");
  REQUIRE(back.at("x").as_number() == 0.1);
  REQUIRE(back.at("u").text == "18446744073709551615");
}
