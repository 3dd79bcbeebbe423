// The checkpoint format: XXH64 checksums, the manifest's JSON round trip and its checks.
#include <catch2/catch.hpp>
#include <string>

#include "checkpoint/checksum.hpp"
#include "checkpoint/manifest.hpp"

using namespace trainer;
using namespace trainer::checkpoint;

TEST_CASE("xxh64 matches the reference values and sees a flipped byte", "[format]") {
  CHECK(xxh64("", 0) == 0xef46db3751d8e999ull);
  CHECK(xxh64("a", 1) == 0xd24ec4f1a98c6e5bull);
  CHECK(xxh64("abc", 3) == 0x44bc2cf5ad770999ull);
  std::string long_text(1000, 'x');
  for (std::size_t i = 0; i < long_text.size(); ++i) long_text[i] = static_cast<char>('a' + i % 26);
  const auto h = xxh64(long_text.data(), long_text.size());
  for (std::size_t at : {std::size_t{0}, std::size_t{31}, std::size_t{32}, std::size_t{500}, std::size_t{999}}) {
    std::string flipped = long_text;
    flipped[at] = static_cast<char>(flipped[at] ^ 1);
    CHECK(xxh64(flipped.data(), flipped.size()) != h);
  }
  CHECK(hex64(0x0123456789abcdefull) == "0123456789abcdef");
  CHECK(parse_hex64("0123456789abcdef") == 0x0123456789abcdefull);
  CHECK_FALSE(parse_hex64("0123"));
  CHECK_FALSE(parse_hex64("0123456789abcdeg"));
}

TEST_CASE("a manifest survives the JSON round trip", "[format]") {
  Manifest m;
  m.step = 120;
  m.seed = 1337;
  m.world = 4;
  m.layout = "fsdp";
  m.recipe = "model: {plugin: gpt}\n# a \"quoted\" comment \\ with a backslash\n\ttab: x\n";
  m.shards = {{"rank-00000.bin", 48}, {"rank-00001.bin", 24}};
  m.tensors.push_back({"params/h.0.attn.qkv.w", DType::f32, {3, 6}, {}});
  m.tensors[0].chunks = {{"rank-00001.bin", 0, 12, 18, 0xfeedull}, {"rank-00000.bin", 8, 0, 12, 0xffffffffffffffffull}};
  m.tensors.push_back({"optimizer/adam_m/wte", DType::f32, {2}, {{"rank-00000.bin", 0, 0, 2, 7}}});
  const Manifest back = parse_manifest(to_json(m), "test");
  CHECK(back.step == 120);
  CHECK(back.seed == 1337);
  CHECK(back.world == 4);
  CHECK(back.layout == "fsdp");
  CHECK(back.recipe == m.recipe);
  REQUIRE(back.shards.size() == 2);
  CHECK(back.shards[1].file == "rank-00001.bin");
  CHECK(back.shards[1].bytes == 24);
  REQUIRE(back.tensors.size() == 2);
  const auto* t = back.find("params/h.0.attn.qkv.w");
  REQUIRE(t);
  CHECK(t->shape == Shape{3, 6});
  REQUIRE(t->chunks.size() == 2);
  CHECK(t->chunks[0].begin == 0);  // sorted by element range
  CHECK(t->chunks[0].offset == 8);
  CHECK(t->chunks[0].xxh64 == 0xffffffffffffffffull);
  CHECK(t->chunks[1].file == "rank-00001.bin");
  CHECK(back.find("optimizer/adam_m/wte"));
  CHECK_FALSE(back.find("params/nope"));
}

TEST_CASE("a manifest whose chunks do not cover a tensor exactly is refused", "[format]") {
  Manifest m;
  m.tensors.push_back({"params/a", DType::f32, {10}, {{"rank-00000.bin", 0, 0, 4, 1}, {"rank-00001.bin", 0, 5, 10, 2}}});
  CHECK_THROWS_WITH(parse_manifest(to_json(m), "x.json"), Catch::Contains("params/a") && Catch::Contains("x.json"));
  m.tensors[0].chunks = {{"rank-00000.bin", 0, 0, 4, 1}};
  CHECK_THROWS_AS(parse_manifest(to_json(m), "x.json"), ManifestError);
  CHECK_THROWS_WITH(parse_manifest("{\"format\": \"trainer-checkpoint/1\"}", "y.json"),
                    Catch::Contains("y.json") && Catch::Contains("step"));
  CHECK_THROWS_AS(parse_manifest("{not json", "z.json"), ManifestError);
}

TEST_CASE("checkpoint directories are named by step", "[format]") {
  CHECK(step_dir_name(120) == "step-000120");
  CHECK(step_dir_name(12345678) == "step-12345678");
  CHECK(parse_step_dir("step-000120") == 120);
  CHECK_FALSE(parse_step_dir("step-000120.tmp-abcd"));
  CHECK_FALSE(parse_step_dir("latest"));
  CHECK_FALSE(parse_step_dir("step-"));
}
