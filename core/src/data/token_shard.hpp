// Token shards in llm.c's .bin format, so files made by llm.c/nanoGPT scripts load as-is:
// a header of 256 little-endian int32 (magic 20240520, version 1, token count, zeros)
// followed by the tokens as uint16.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace trainer::data {

inline constexpr std::int32_t kShardMagic = 20240520;
inline constexpr std::int32_t kShardVersion = 1;
inline constexpr std::size_t kShardHeaderInts = 256;
inline constexpr std::size_t kShardHeaderBytes = kShardHeaderInts * sizeof(std::int32_t);

// Written atomically (<path>.tmp, fsync, rename). Throws std::runtime_error on I/O errors
// and std::invalid_argument if the count does not fit the header's int32.
void write_token_shard(const std::filesystem::path& path, std::span<const std::uint16_t> tokens);

// A read-only memory-mapped shard. Opening validates the header and the file size and
// throws std::runtime_error naming the path and the problem.
class TokenShard {
 public:
  explicit TokenShard(const std::filesystem::path& path);
  ~TokenShard();
  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::uint16_t* data() const { return tokens_; }
  std::span<const std::uint16_t> tokens() const { return {tokens_, size_}; }
  std::uint16_t operator[](std::size_t i) const { return tokens_[i]; }
  const std::filesystem::path& path() const { return path_; }
  // Largest token id (0 for an empty shard): lets a caller check it against the model's
  // vocabulary. Computed on first use, since a scan of a large shard is not free.
  std::uint16_t max_token() const;

 private:
  void release() noexcept;

  std::filesystem::path path_;
  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  const std::uint16_t* tokens_ = nullptr;
  std::size_t size_ = 0;
  // -1 until computed. Concurrent first calls may both scan; they store the same value.
  mutable std::atomic<std::int32_t> max_token_{-1};
};

}  // namespace trainer::data
