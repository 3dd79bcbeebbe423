#include "data/token_shard.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "data/atomic_file.hpp"

namespace trainer::data {

// The format is defined as little-endian; writing and mapping native words is only
// correct on little-endian hosts, which is every platform this project targets.
static_assert(std::endian::native == std::endian::little, "token shards assume little-endian");

void write_token_shard(const std::filesystem::path& path, std::span<const std::uint16_t> tokens) {
  if (tokens.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    throw std::invalid_argument(fmt::format("{}: {} tokens do not fit a shard header (max {})",
                                            path.string(), tokens.size(),
                                            std::numeric_limits<std::int32_t>::max()));
  }
  std::array<std::int32_t, kShardHeaderInts> header{};
  header[0] = kShardMagic;
  header[1] = kShardVersion;
  header[2] = static_cast<std::int32_t>(tokens.size());
  AtomicFile file(path);
  file.write(std::as_bytes(std::span(header)));
  file.write(std::as_bytes(tokens));
  file.commit();
}

namespace {

[[noreturn]] void invalid(const std::filesystem::path& path, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", path.string(), what));
}

}  // namespace

TokenShard::TokenShard(const std::filesystem::path& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) invalid(path, fmt::format("cannot open token shard: {}", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    invalid(path, fmt::format("cannot stat token shard: {}", std::strerror(err)));
  }
  const auto file_bytes = static_cast<std::size_t>(st.st_size);
  if (file_bytes < kShardHeaderBytes) {
    ::close(fd);
    invalid(path, file_bytes == 0 ? std::string("not a token shard: empty file")
                                  : fmt::format("truncated: {} bytes, smaller than the {}-byte header",
                                                file_bytes, kShardHeaderBytes));
  }
  void* map = ::mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) invalid(path, fmt::format("mmap failed: {}", std::strerror(map_err)));
  map_ = map;
  map_bytes_ = file_bytes;

  // From here on the destructor does not run if we throw, so unmap by hand on failure.
  std::array<std::int32_t, 3> head{};
  std::memcpy(head.data(), map, sizeof(head));
  std::string problem;
  const std::size_t held = (file_bytes - kShardHeaderBytes) / sizeof(std::uint16_t);
  if (head[0] != kShardMagic) {
    problem = fmt::format("not a token shard: bad magic {} (expected {})", head[0], kShardMagic);
  } else if (head[1] != kShardVersion) {
    problem = fmt::format("unsupported token shard version {} (expected {})", head[1], kShardVersion);
  } else if (head[2] < 0) {
    problem = fmt::format("corrupt header: negative token count {}", head[2]);
  } else if (const auto count = static_cast<std::size_t>(head[2]);
             file_bytes != kShardHeaderBytes + count * sizeof(std::uint16_t)) {
    const bool odd = (file_bytes - kShardHeaderBytes) % 2 != 0;
    problem = fmt::format("{}: header says {} tokens, file holds {}{}",
                          held < count ? "truncated" : "trailing data", count, held,
                          odd ? " and a stray byte" : "");
  }
  if (!problem.empty()) {
    release();
    invalid(path, problem);
  }
  size_ = static_cast<std::size_t>(head[2]);
  tokens_ = reinterpret_cast<const std::uint16_t*>(static_cast<const std::byte*>(map) +
                                                   kShardHeaderBytes);
  // Training reads windows at random positions; tell the kernel not to read ahead.
  ::madvise(map, file_bytes, MADV_RANDOM);
}

TokenShard::~TokenShard() { release(); }

TokenShard::TokenShard(TokenShard&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      tokens_(std::exchange(other.tokens_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      max_token_(other.max_token_.exchange(-1)) {}

TokenShard& TokenShard::operator=(TokenShard&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    tokens_ = std::exchange(other.tokens_, nullptr);
    size_ = std::exchange(other.size_, 0);
    max_token_.store(other.max_token_.exchange(-1));
  }
  return *this;
}

void TokenShard::release() noexcept {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
  tokens_ = nullptr;
  size_ = 0;
  max_token_.store(-1);
}

std::uint16_t TokenShard::max_token() const {
  std::int32_t cached = max_token_.load(std::memory_order_relaxed);
  if (cached < 0) {
    cached = size_ == 0 ? 0 : *std::max_element(tokens_, tokens_ + size_);
    max_token_.store(cached, std::memory_order_relaxed);
  }
  return static_cast<std::uint16_t>(cached);
}

}  // namespace trainer::data
