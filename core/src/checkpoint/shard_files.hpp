// The shard files of one checkpoint, mapped into memory on first use: reading the many short
// runs of a tensor-parallel shard costs a copy each, not a system call each.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace trainer::checkpoint {

class ShardFiles {
 public:
  explicit ShardFiles(std::filesystem::path dir) : dir_(std::move(dir)) {}
  ~ShardFiles();
  ShardFiles(const ShardFiles&) = delete;
  ShardFiles& operator=(const ShardFiles&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  // `bytes` bytes at `offset` of `file` (relative to the checkpoint directory); throws
  // CheckpointError naming the file if it is missing or too short.
  const char* at(const std::string& file, std::uint64_t offset, std::uint64_t bytes);

 private:
  struct Mapping {
    void* data = nullptr;
    std::size_t size = 0;
  };
  std::filesystem::path dir_;
  std::map<std::string, Mapping> files_;
};

}  // namespace trainer::checkpoint
