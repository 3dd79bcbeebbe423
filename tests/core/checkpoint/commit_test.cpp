// Writing and reading checkpoints: sharded writes merged into one manifest, atomic commit,
// retention, reading any range, and falling back past damaged or uncommitted checkpoints.
#include <catch2/catch.hpp>
#include <fstream>

#include "checkpoint/checkpoint_reader.hpp"
#include "checkpoint/checkpoint_writer.hpp"
#include "checkpoint_helpers.hpp"
#include "support/recipes.hpp"

using namespace trainer;
using namespace trainer::checkpoint;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::string s, line;
  while (std::getline(in, line)) s += line + "\n";
  return s;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

}  // namespace

TEST_CASE("three ranks' shards commit as one checkpoint that reads back any range", "[commit]") {
  test::RecipeDir tmp("ckpt-shards");
  const auto dir = tmp.path() / "ckpt";
  test::write_test_checkpoint(dir, 7, 3);
  CHECK(fs::is_directory(dir / "step-000007"));
  CHECK(read_text(dir / "latest") == "step-000007\n");
  for (const char* f : {"rank-00000.bin", "rank-00001.bin", "rank-00002.bin", "manifest.json"}) {
    CHECK(fs::exists(dir / "step-000007" / f));
  }
  std::vector<std::string> warnings;
  const auto found = find_latest_good(dir, warnings);
  REQUIRE(found);
  CHECK(warnings.empty());
  CHECK(found->manifest.step == 7);
  CHECK(found->manifest.world == 3);
  CHECK(found->manifest.shards.size() == 3);
  const auto* a = found->manifest.find("params/a");
  REQUIRE(a);
  CHECK(a->chunks.size() == 3);  // 4 + 4 + 2 elements
  // A range across chunk boundaries, as a rank of another layout would read it.
  std::vector<float> out(7);
  read_range(found->dir, found->manifest, "params/a", 2, 9, out.data(), true);
  CHECK(out == std::vector<float>{2, 3, 4, 5, 6, 7, 8});
  std::vector<float> b(6);
  read_range(found->dir, found->manifest, "params/b", 0, 6, b.data());
  CHECK(b == std::vector<float>{100, 101, 102, 103, 104, 105});
  CHECK_THROWS_WITH(read_range(found->dir, found->manifest, "params/c", 0, 1, out.data()), Catch::Contains("params/c"));
}

TEST_CASE("an uncommitted temporary is ignored with a warning", "[commit]") {
  test::RecipeDir tmp("ckpt-atomic");
  const auto dir = tmp.path() / "ckpt";
  test::write_test_checkpoint(dir, 3);
  // A save that died before its commit: shards written, no manifest, never renamed.
  fs::create_directories(dir / "step-000006.tmp-dead");
  fs::copy_file(dir / "step-000003" / "rank-00000.bin", dir / "step-000006.tmp-dead" / "rank-00000.bin");
  std::vector<std::string> warnings;
  const auto found = find_latest_good(dir, warnings);
  REQUIRE(found);
  CHECK(found->manifest.step == 3);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("step-000006.tmp-dead") && Catch::Contains("never committed"));
  remove_stale_temporaries(dir);
  CHECK_FALSE(fs::exists(dir / "step-000006.tmp-dead"));
  CHECK(fs::exists(dir / "step-000003"));
}

TEST_CASE("retention keeps the newest `keep` checkpoints", "[commit]") {
  test::RecipeDir tmp("ckpt-keep");
  const auto dir = tmp.path() / "ckpt";
  for (int step : {2, 4, 6, 8}) test::write_test_checkpoint(dir, step, 2, 2);
  const auto left = committed_checkpoints(dir);
  REQUIRE(left.size() == 2);
  CHECK(left[0].first == 6);
  CHECK(left[1].first == 8);
  CHECK(read_text(dir / "latest") == "step-000008\n");
  test::write_test_checkpoint(dir, 10, 1, 0, false);  // keep 0: all kept; synchronous
  CHECK(committed_checkpoints(dir).size() == 3);
}

TEST_CASE("a damaged newest checkpoint falls back to the previous good one, naming the file", "[commit]") {
  test::RecipeDir tmp("ckpt-damaged");
  const auto dir = tmp.path() / "ckpt";
  for (int step : {2, 4, 6}) test::write_test_checkpoint(dir, step, 2);

  SECTION("a flipped byte in a shard") {
    test::flip_byte(dir / "step-000006" / "rank-00001.bin", 5);
    std::vector<std::string> warnings;
    const auto found = find_latest_good(dir, warnings);
    REQUIRE(found);
    CHECK(found->manifest.step == 4);
    REQUIRE(warnings.size() == 1);
    CHECK_THAT(warnings[0], Catch::Contains((dir / "step-000006" / "rank-00001.bin").string()) &&
                                Catch::Contains("checksum mismatch") && Catch::Contains("falling back to") &&
                                Catch::Contains("step-000004"));
  }
  SECTION("a truncated shard and a missing manifest") {
    fs::resize_file(dir / "step-000006" / "rank-00000.bin", 4);
    fs::remove(dir / "step-000004" / "manifest.json");
    std::vector<std::string> warnings;
    const auto found = find_latest_good(dir, warnings);
    REQUIRE(found);
    CHECK(found->manifest.step == 2);
    REQUIRE(warnings.size() == 2);
    CHECK_THAT(joined(warnings), Catch::Contains((dir / "step-000006" / "rank-00000.bin").string()) &&
                                     Catch::Contains((dir / "step-000004" / "manifest.json").string()));
  }
  SECTION("nothing intact") {
    for (int step : {2, 4, 6}) test::flip_byte(dir / ("step-00000" + std::to_string(step)) / "rank-00000.bin", 0);
    std::vector<std::string> warnings;
    CHECK_FALSE(find_latest_good(dir, warnings));
    CHECK(warnings.size() == 3);
    CHECK_THAT(warnings.back(), Catch::Contains("no earlier checkpoint"));
  }
}

TEST_CASE("a checkpoint folder that does not exist has no checkpoint", "[commit]") {
  std::vector<std::string> warnings;
  CHECK_FALSE(find_latest_good("/nonexistent/ckpt", warnings));
  CHECK(warnings.empty());
}
