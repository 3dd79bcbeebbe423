// Byte-level preparation: the token stream is the files' bytes, split nanoGPT-style.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/dataset_json.hpp"
#include "data/prepare.hpp"
#include "data/token_shard.hpp"
#include "temp_dir.hpp"

using namespace trainer::data;
using trainer::data::test::read_file;
using trainer::data::test::TempDir;
using trainer::data::test::write_file;

namespace {

std::string shard_as_bytes(const TokenShard& shard) {
  REQUIRE(shard.max_token() < 256);
  std::string out(shard.size(), '\0');
  for (std::size_t i = 0; i < shard.size(); ++i) out[i] = static_cast<char>(shard[i]);
  return out;
}

}  // namespace

TEST_CASE("prepare concatenates the inputs' bytes and splits off the tail as val", "[data][prepare]") {
  TempDir dir("prepare");
  write_file(dir / "a.txt", "hello ");
  write_file(dir / "b.txt", std::string("w\xC3\xB6rld\n\x01\xFF", 9));  // non-ASCII bytes too
  const std::string all = read_file(dir / "a.txt") + read_file(dir / "b.txt");
  REQUIRE(all.size() == 15);

  const auto out = dir / "out" / "nested";  // created on demand
  const PrepareResult r = prepare_text({dir / "a.txt", dir / "b.txt"}, out, 0.2);
  REQUIRE(r.train_tokens == 12);  // floor(15 * 0.8)
  REQUIRE(r.val_tokens == 3);
  REQUIRE(r.train == out / "train.bin");
  REQUIRE(r.val == out / "val.bin");

  const TokenShard train(r.train);
  const TokenShard val(r.val);
  REQUIRE(shard_as_bytes(train) + shard_as_bytes(val) == all);
  REQUIRE(shard_as_bytes(val) == all.substr(12));
  REQUIRE(train.max_token() == 0xC3);
  REQUIRE(val.max_token() == 0xFF);

  const auto json = read_flat_json(out / "dataset.json");
  REQUIRE(json.at("tokenizer").text == "bytes");
  REQUIRE(json.at("vocab_size").as_number() == 256);
  REQUIRE(json.at("train_tokens").as_number() == 12);
  REQUIRE(json.at("val_tokens").as_number() == 3);
  REQUIRE(json.at("val_fraction").as_number() == 0.2);
  REQUIRE(json.at("sources").kind == JsonValue::Kind::array);
  REQUIRE(json.at("sources").items.size() == 2);
  REQUIRE(std::filesystem::path(json.at("sources").items[1].text).filename() == "b.txt");
}

TEST_CASE("val_fraction 0 puts everything in train", "[data][prepare]") {
  TempDir dir("prepare");
  write_file(dir / "a.txt", "abc");
  const PrepareResult r = prepare_text({dir / "a.txt"}, dir / "out", 0.0);
  REQUIRE(r.train_tokens == 3);
  REQUIRE(r.val_tokens == 0);
  REQUIRE(TokenShard(r.val).size() == 0);
}

TEST_CASE("prepare on tinyshakespeare gives nanoGPT's 90/10 split", "[data][prepare]") {
  const std::filesystem::path source = TRAINER_TEST_SOURCE_DIR "/../shared/data/tinyshakespeare.txt";
  if (!std::filesystem::exists(source)) {
    WARN("skipped: " << source << " not found");
    return;
  }
  TempDir dir("prepare");
  const std::string text = read_file(source);
  const std::size_t n = text.size();
  const PrepareResult r = prepare_text({source}, dir.path(), 0.1);
  REQUIRE(r.train_tokens == static_cast<std::uint64_t>(std::floor(static_cast<double>(n) * 0.9)));
  REQUIRE(r.train_tokens + r.val_tokens == n);
  if (n == 1115394) {  // the canonical file: nanoGPT's shakespeare_char reports these
    REQUIRE(r.train_tokens == 1003854);
    REQUIRE(r.val_tokens == 111540);
  }
  const TokenShard train(r.train);
  const TokenShard val(r.val);
  REQUIRE(shard_as_bytes(train) == text.substr(0, r.train_tokens));
  REQUIRE(shard_as_bytes(val) == text.substr(r.train_tokens));
}

TEST_CASE("prepare names the input file that is missing or empty", "[data][prepare]") {
  TempDir dir("prepare");
  write_file(dir / "ok.txt", "some text");
  write_file(dir / "empty.txt", "");
  const auto missing = dir / "missing.txt";
  REQUIRE_THROWS_WITH(prepare_text({dir / "ok.txt", missing}, dir / "out", 0.1),
                      Catch::Contains(missing.string()) && Catch::Contains("not found"));
  REQUIRE_THROWS_WITH(prepare_text({dir / "ok.txt", dir / "empty.txt"}, dir / "out", 0.1),
                      Catch::Contains((dir / "empty.txt").string()) && Catch::Contains("empty"));
  REQUIRE_FALSE(std::filesystem::exists(dir / "out" / "dataset.json"));
}

TEST_CASE("prepare rejects a bad split or no inputs", "[data][prepare]") {
  TempDir dir("prepare");
  write_file(dir / "a.txt", "abcdef");
  REQUIRE_THROWS_AS(prepare_text({dir / "a.txt"}, dir / "out", 1.0), std::invalid_argument);
  REQUIRE_THROWS_AS(prepare_text({dir / "a.txt"}, dir / "out", -0.1), std::invalid_argument);
  REQUIRE_THROWS_AS(prepare_text({dir / "a.txt"}, dir / "out", std::nan("")), std::invalid_argument);
  REQUIRE_THROWS_AS(prepare_text({}, dir / "out", 0.1), std::invalid_argument);
}

TEST_CASE("decode_bytes inverts the byte tokenizer", "[data][prepare]") {
  const std::vector<int> tokens{72, 105, 0, 255, 10};
  REQUIRE(decode_bytes(tokens) == std::string("Hi\0\xFF\n", 5));
  REQUIRE(decode_bytes({}).empty());
  REQUIRE_THROWS_WITH(decode_bytes(std::vector<int>{65, 256}), Catch::Contains("position 1"));
  REQUIRE_THROWS_AS(decode_bytes(std::vector<int>{-1}), std::invalid_argument);
}
