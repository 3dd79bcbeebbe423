// Token shards: llm.c's .bin layout, atomic writes, and errors that say what is wrong.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "data/token_shard.hpp"
#include "temp_dir.hpp"

using trainer::data::TokenShard;
using trainer::data::write_token_shard;
using trainer::data::test::read_file;
using trainer::data::test::TempDir;
using trainer::data::test::write_file;

namespace {

std::vector<std::uint16_t> sample_tokens(std::size_t n) {
  std::vector<std::uint16_t> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<std::uint16_t>((i * 7919u + 13u) % 65536u);
  return t;
}

std::string header_bytes(std::int32_t magic, std::int32_t version, std::int32_t count) {
  std::vector<std::int32_t> header(256, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = count;
  return {reinterpret_cast<const char*>(header.data()), header.size() * 4};
}

}  // namespace

TEST_CASE("a written shard reads back token for token", "[data][token_shard]") {
  TempDir dir("shard");
  auto tokens = sample_tokens(5000);
  tokens[17] = 65535;  // the full uint16 range survives
  tokens[18] = 0;
  const auto path = dir / "train.bin";
  write_token_shard(path, tokens);

  TokenShard shard(path);
  REQUIRE(shard.size() == tokens.size());
  REQUIRE(shard.path() == path);
  for (std::size_t i = 0; i < tokens.size(); ++i) REQUIRE(shard[i] == tokens[i]);
  REQUIRE(std::memcmp(shard.data(), tokens.data(), tokens.size() * 2) == 0);
  REQUIRE(shard.tokens().size() == tokens.size());
  REQUIRE(shard.max_token() == 65535);
  REQUIRE(shard.max_token() == 65535);  // cached value
}

TEST_CASE("the file layout is llm.c's: 256 int32 header then uint16 tokens", "[data][token_shard]") {
  TempDir dir("shard");
  const std::vector<std::uint16_t> tokens{1, 2, 300, 40000};
  const auto path = dir / "x.bin";
  write_token_shard(path, tokens);
  const std::string bytes = read_file(path);
  REQUIRE(bytes.size() == 1024 + 2 * tokens.size());
  REQUIRE(bytes.substr(0, 1024) == header_bytes(20240520, 1, 4));
  REQUIRE(std::memcmp(bytes.data() + 1024, tokens.data(), 8) == 0);
  REQUIRE_FALSE(std::filesystem::exists(dir / "x.bin.tmp"));  // renamed away
}

TEST_CASE("writing replaces an existing shard whole", "[data][token_shard]") {
  TempDir dir("shard");
  const auto path = dir / "x.bin";
  write_token_shard(path, sample_tokens(1000));
  write_token_shard(path, std::vector<std::uint16_t>{9, 8, 7});
  TokenShard shard(path);
  REQUIRE(shard.size() == 3);
  REQUIRE(shard[0] == 9);
  REQUIRE(shard.max_token() == 9);
}

TEST_CASE("a shard with no tokens is valid", "[data][token_shard]") {
  TempDir dir("shard");
  write_token_shard(dir / "e.bin", {});
  TokenShard shard(dir / "e.bin");
  REQUIRE(shard.size() == 0);
  REQUIRE(shard.empty());
  REQUIRE(shard.max_token() == 0);
}

TEST_CASE("shards are move-only and moves transfer the mapping", "[data][token_shard]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<TokenShard>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<TokenShard>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<TokenShard>);
  TempDir dir("shard");
  write_token_shard(dir / "a.bin", std::vector<std::uint16_t>{5, 6, 7});
  write_token_shard(dir / "b.bin", std::vector<std::uint16_t>{1});
  TokenShard a(dir / "a.bin");
  REQUIRE(a.max_token() == 7);
  TokenShard moved(std::move(a));
  REQUIRE(moved.size() == 3);
  REQUIRE(moved[2] == 7);
  REQUIRE(moved.max_token() == 7);
  REQUIRE(a.size() == 0);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  TokenShard b(dir / "b.bin");
  b = std::move(moved);
  REQUIRE(b.size() == 3);
  REQUIRE(b[0] == 5);
  REQUIRE(b.path() == dir / "a.bin");
}

TEST_CASE("opening rejects files that are not valid shards, naming path and problem",
          "[data][token_shard]") {
  TempDir dir("shard");
  const auto path = dir / "bad.bin";
  const std::string name = path.string();

  SECTION("bad magic") {
    write_file(path, header_bytes(123, 1, 0));
    REQUIRE_THROWS_AS(TokenShard(path), std::runtime_error);
    REQUIRE_THROWS_WITH(TokenShard(path), Catch::Contains(name) &&
                        Catch::Contains("not a token shard: bad magic 123 (expected 20240520)"));
  }
  SECTION("bad version") {
    write_file(path, header_bytes(20240520, 7, 0));
    REQUIRE_THROWS_WITH(TokenShard(path), Catch::Contains(name) && Catch::Contains("version 7"));
  }
  SECTION("truncated token data") {
    write_token_shard(path, sample_tokens(100));
    std::filesystem::resize_file(path, 1024 + 2 * 50);
    REQUIRE_THROWS_WITH(TokenShard(path), Catch::Contains(name) &&
                        Catch::Contains("truncated: header says 100 tokens, file holds 50"));
  }
  SECTION("truncated header") {
    write_file(path, header_bytes(20240520, 1, 0).substr(0, 100));
    REQUIRE_THROWS_WITH(TokenShard(path), Catch::Contains(name) && Catch::Contains("truncated"));
  }
  SECTION("trailing bytes") {
    write_file(path, header_bytes(20240520, 1, 2) + std::string(6, '\0'));
    REQUIRE_THROWS_WITH(TokenShard(path), Catch::Contains("header says 2 tokens, file holds 3"));
  }
  SECTION("negative count") {
    write_file(path, header_bytes(20240520, 1, -4));
    REQUIRE_THROWS_WITH(TokenShard(path), Catch::Contains("negative token count -4"));
  }
  SECTION("empty file") {
    write_file(path, "");
    REQUIRE_THROWS_WITH(TokenShard(path), Catch::Contains(name) && Catch::Contains("empty file"));
  }
  SECTION("missing file") {
    REQUIRE_THROWS_WITH(TokenShard(dir / "nope.bin"),
                        Catch::Contains((dir / "nope.bin").string()) && Catch::Contains("cannot open"));
  }
}

TEST_CASE("writing into a missing directory fails with the path", "[data][token_shard]") {
  TempDir dir("shard");
  const auto path = dir / "no" / "such" / "x.bin";
  REQUIRE_THROWS_WITH(write_token_shard(path, sample_tokens(3)), Catch::Contains("x.bin.tmp"));
  REQUIRE_FALSE(std::filesystem::exists(path));
}
