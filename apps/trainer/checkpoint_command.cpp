// trainer checkpoint inspect DIR [--verify] [--json]: what a checkpoint holds, from its
// manifest. DIR is one checkpoint (step-N/) or a checkpoint folder (its newest good one).
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint/checkpoint_reader.hpp"
#include "checkpoint/checkpoint_writer.hpp"
#include "checkpoint/checksum.hpp"
#include "commands.hpp"
#include "util/text.hpp"

namespace trainer::cli {
namespace {

namespace fs = std::filesystem;
using namespace trainer::checkpoint;


int inspect(const fs::path& arg, bool verify, bool json) {
  fs::path dir = arg;
  if (!fs::exists(dir / "manifest.json")) {
    if (!fs::is_directory(dir)) {
      fmt::print(stderr, "trainer checkpoint: {} is not a directory\n", dir.string());
      return 1;
    }
    // A checkpoint folder: list it, then inspect its newest good checkpoint.
    const auto all = committed_checkpoints(dir);
    std::string latest;
    std::ifstream(dir / "latest") >> latest;
    if (!json) {
      fmt::print("{}: {} committed checkpoint(s){}\n", dir.string(), all.size(),
                 latest.empty() ? "" : fmt::format(", latest -> {}", latest));
      for (const auto& [step, path] : all) fmt::print("  {}\n", path.filename().string());
    }
    std::vector<std::string> warnings;
    const auto good = find_latest_good(dir, warnings);
    for (const auto& w : warnings) fmt::print(stderr, "warning: {}\n", w);
    if (!good) {
      fmt::print(stderr, "trainer checkpoint: no intact checkpoint in {}\n", dir.string());
      return 1;
    }
    dir = good->dir;
    verify = false;  // find_latest_good verified it
    if (!json) fmt::print("newest intact: {}\n\n", dir.filename().string());
  }
  const Manifest m = read_manifest(dir / "manifest.json");
  if (json) {
    std::ifstream in(dir / "manifest.json");
    std::stringstream ss;
    ss << in.rdbuf();
    fmt::print("{}", ss.str());
    return 0;
  }
  std::uint64_t total = 0;
  for (const auto& s : m.shards) total += s.bytes;
  fmt::print("checkpoint {}\n  format {} | step {} (training resumes at step {}) | seed {}\n", dir.string(), m.format,
             m.step, m.step + 1, m.seed);
  fmt::print("  saved by {} rank(s), layout {}, mesh dp {} x tp {} x pp {} | {} tensors (whole: loads under any "
             "mesh), {}\n", m.world, m.layout, m.dp, m.tp, m.pp, m.tensors.size(), format_bytes(static_cast<double>(total)));
  fmt::print("  sampler (seed {}, step {}), dropout RNG counter-based (seed, step, micro, site), LR schedule at step {}\n",
             m.seed, m.step, m.step);
  fmt::print("shards:\n");
  for (const auto& s : m.shards) fmt::print("  {:<16} {:>12} bytes\n", s.file, s.bytes);
  fmt::print("tensors:\n");
  for (const auto& t : m.tensors) {
    fmt::print("  {} {} {}\n", t.name, dtype_name(t.dtype), shape_string(t.shape));
    for (const auto& c : t.chunks) {
      // A tensor-parallel shard's rows: `count` runs `stride` elements apart.
      const std::string runs = c.count > 1 ? fmt::format(" x {} rows, stride {}", c.count, c.stride) : "";
      fmt::print("    [{}, {}){} {} @ {} xxh64 {}\n", c.begin, c.end, runs, c.file, c.offset, hex64(c.xxh64));
    }
  }
  fmt::print("recipe:\n");
  std::istringstream recipe(m.recipe);
  for (std::string line; std::getline(recipe, line);) fmt::print("  {}\n", line);
  if (verify) {
    verify_checkpoint(dir, m);
    fmt::print("verified: every shard has its size and every chunk its checksum\n");
  }
  return 0;
}

}  // namespace

int checkpoint_command(const Args& args) {
  constexpr const char* usage = "usage: trainer checkpoint inspect DIR [--verify] [--json]\n";
  if (args.empty() || args[0] != "inspect") {
    fmt::print(stderr, "{}", usage);
    return 2;
  }
  std::string dir;
  bool verify = false, json = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--verify") verify = true;
    else if (args[i] == "--json") json = true;
    else if (dir.empty() && args[i].rfind("--", 0) != 0) dir = args[i];
    else {
      fmt::print(stderr, "{}", usage);
      return 2;
    }
  }
  if (dir.empty()) {
    fmt::print(stderr, "{}", usage);
    return 2;
  }
  try {
    return inspect(dir, verify, json);
  } catch (const std::exception& e) {
    fmt::print(stderr, "trainer checkpoint: {}\n", e.what());
    return 1;
  }
}

}  // namespace trainer::cli
