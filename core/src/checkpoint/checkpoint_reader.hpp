// Reading checkpoints back: find the newest one that is committed and intact (falling back,
// with a warning naming the bad file, past damaged or uncommitted ones), and read any element
// range of any tensor from the chunks that hold it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "checkpoint/manifest.hpp"
#include "checkpoint/shard_files.hpp"
#include "checkpoint/slice_map.hpp"

namespace trainer::checkpoint {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct FoundCheckpoint {
  std::filesystem::path dir;
  Manifest manifest;
};

// Checks that every shard file exists with its recorded size and every chunk's checksum;
// throws CheckpointError naming the first bad file.
void verify_checkpoint(const std::filesystem::path& dir, const Manifest& m);

// The newest committed checkpoint under `dir` that verifies. Every checkpoint skipped on the
// way and every uncommitted temporary newer than the result adds a line to `warnings`.
std::optional<FoundCheckpoint> find_latest_good(const std::filesystem::path& dir, std::vector<std::string>& warnings);

// The elements of `want` (a region of tensor `name`, f32) into `out` in the region's order,
// from whichever chunks hold them. `verify`: check the checksum of every chunk touched.
void read_region(ShardFiles& files, const Manifest& m, const std::string& name, const Region& want, float* out,
                 bool verify = false);
// Elements [begin, end) of tensor `name`: read_region of one range.
void read_range(const std::filesystem::path& dir, const Manifest& m, const std::string& name, std::int64_t begin,
                std::int64_t end, float* out, bool verify = false);

// Removes temporaries (step-N.tmp-*) left by earlier jobs.
void remove_stale_temporaries(const std::filesystem::path& dir);

}  // namespace trainer::checkpoint
