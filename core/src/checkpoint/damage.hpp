// Deliberate damage to a committed checkpoint, for fault injection (faults: kind corrupt):
// the test that a damaged checkpoint is detected and the previous good one used.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>

namespace trainer::checkpoint {

struct Damage {
  std::int64_t step = 0;       // the checkpoint damaged
  std::filesystem::path file;  // the shard file
  std::uint64_t offset = 0;    // the byte whose bits were all flipped
};

// Flips every bit of the middle byte of `rank`'s shard (rank-NNNNN.bin) in the newest
// committed checkpoint under `dir`, and flushes it to disk. nullopt when there is no
// committed checkpoint or it holds no non-empty shard of that rank. Throws
// std::runtime_error when the file cannot be rewritten.
std::optional<Damage> corrupt_newest_shard(const std::filesystem::path& dir, int rank);

}  // namespace trainer::checkpoint
