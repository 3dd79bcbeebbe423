// One rank's shard of a checkpoint: the host snapshot of the slices it writes, written to
// rank-NNNNN.bin (raw little-endian f32, slice after slice), fsynced, with a checksum per
// slice. The result travels to rank 0 through the store as a few lines of text.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint/host_buffer.hpp"
#include "checkpoint/manifest.hpp"

namespace trainer::checkpoint {

// Elements [begin + k*stride, end + k*stride) for k < count of the global tensor `tensor`
// (of shape `shape`), in that order: a range when count is 1, a tensor-parallel shard's
// rows otherwise (slice_map.hpp).
struct SliceRef {
  std::string tensor;
  Shape shape;
  std::int64_t begin = 0, end = 0;
  std::int64_t stride = 0, count = 1;
  std::int64_t numel() const { return (end - begin) * count; }
};

// What a rank saves at one step: its slices, and their values one after another in `data`.
struct Snapshot {
  std::vector<SliceRef> slices;
  HostBuffer data;  // pinned on a GPU backend (Checkpointer binds it to the backend)
};

struct WrittenChunk {
  SliceRef slice;
  Chunk chunk;
};

struct ShardResult {
  ShardFile file;
  std::vector<WrittenChunk> chunks;
};

std::string shard_file_name(int rank);  // "rank-00003.bin"

// Called after each slice is written with (bytes written, bytes in the shard) and the file.
using ShardProgress = std::function<void(std::uint64_t, std::uint64_t, const std::filesystem::path&)>;

// Writes <dir>/<shard_file_name(rank)>, fsyncs it and returns where each slice went.
// `progress` (fault injection: kill_during_save) sees the write advance slice by slice.
ShardResult write_shard(const std::filesystem::path& dir, int rank, const Snapshot& snapshot,
                        const ShardProgress& progress = {});

std::string encode(const ShardResult& r);
ShardResult decode_shard_result(const std::string& text);  // throws std::runtime_error

// Directory helpers: create (tolerating a concurrent creator), fsync (best effort).
void ensure_directory(const std::filesystem::path& dir);
void fsync_directory(const std::filesystem::path& dir);

}  // namespace trainer::checkpoint
