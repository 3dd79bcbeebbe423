#include "checkpoint/damage.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "checkpoint/checkpoint_writer.hpp"
#include "checkpoint/shard_writer.hpp"

namespace trainer::checkpoint {

std::optional<Damage> corrupt_newest_shard(const std::filesystem::path& dir, int rank) {
  const auto all = committed_checkpoints(dir);
  if (all.empty()) return std::nullopt;
  const auto file = all.back().second / shard_file_name(rank);
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec || size == 0) return std::nullopt;
  const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(fmt::format("{}: cannot open: {}", file.string(), std::strerror(errno)));
  const auto offset = static_cast<off_t>(size / 2);
  unsigned char byte = 0;
  bool ok = ::pread(fd, &byte, 1, offset) == 1;
  byte = static_cast<unsigned char>(~byte);
  ok = ok && ::pwrite(fd, &byte, 1, offset) == 1 && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw std::runtime_error(fmt::format("{}: cannot rewrite byte {}: {}", file.string(), offset, std::strerror(err)));
  return Damage{all.back().first, file, static_cast<std::uint64_t>(offset)};
}

}  // namespace trainer::checkpoint
