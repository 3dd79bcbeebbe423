#include "checkpoint/shard_files.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "checkpoint/checkpoint_reader.hpp"

namespace trainer::checkpoint {

ShardFiles::~ShardFiles() {
  for (auto& [name, m] : files_) {
    if (m.data) ::munmap(m.data, m.size);
  }
}

const char* ShardFiles::at(const std::string& file, std::uint64_t offset, std::uint64_t bytes) {
  const auto path = dir_ / file;
  auto it = files_.find(file);
  if (it == files_.end()) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw CheckpointError(path.string() + ": missing");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw CheckpointError(fmt::format("{}: cannot stat: {}", path.string(), std::strerror(err)));
    }
    Mapping m;
    m.size = static_cast<std::size_t>(st.st_size);
    if (m.size > 0) {
      void* p = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw CheckpointError(fmt::format("{}: cannot map: {}", path.string(), std::strerror(err)));
      }
      m.data = p;
    }
    ::close(fd);  // the mapping stays valid
    it = files_.emplace(file, m).first;
  }
  if (offset + bytes > it->second.size) {
    throw CheckpointError(fmt::format("{}: truncated (wanted {} bytes at offset {}, the file has {})", path.string(),
                                      bytes, offset, it->second.size));
  }
  return static_cast<const char*>(it->second.data) + offset;
}

}  // namespace trainer::checkpoint
