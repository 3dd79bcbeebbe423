#include "checkpoint/shard_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "checkpoint/checksum.hpp"

namespace trainer::checkpoint {
namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const char* what, int err) {
  throw std::runtime_error(fmt::format("{}: {}: {}", path.string(), what, std::strerror(err)));
}

void write_all(int fd, const std::filesystem::path& path, const void* data, std::size_t bytes) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      fail(path, "write failed", err);
    }
    p += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

}  // namespace

std::string shard_file_name(int rank) { return fmt::format("rank-{:05}.bin", rank); }

ShardResult write_shard(const std::filesystem::path& dir, int rank, const Snapshot& snapshot,
                        const ShardProgress& progress) {
  ShardResult r;
  r.file.file = shard_file_name(rank);
  const auto path = dir / r.file.file;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot create", errno);
  std::uint64_t offset = 0;
  std::size_t at = 0;
  const std::uint64_t total = static_cast<std::uint64_t>(snapshot.data.size()) * sizeof(float);
  for (const auto& s : snapshot.slices) {
    const float* p = snapshot.data.data() + at;
    const std::size_t bytes = static_cast<std::size_t>(s.numel()) * sizeof(float);
    write_all(fd, path, p, bytes);
    r.chunks.push_back({s, Chunk{r.file.file, offset, s.begin, s.end, xxh64(p, bytes), s.stride, s.count}});
    offset += bytes;
    at += static_cast<std::size_t>(s.numel());
    if (progress) progress(offset, total, path);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, "fsync failed", err);
  }
  if (::close(fd) != 0) fail(path, "close failed", errno);
  r.file.bytes = offset;
  return r;
}

// Line 1: "<file> <bytes>"; then per chunk: tensor \t shape (comma-separated) \t begin \t end
// \t stride \t count \t offset \t xxh64. Tensor names hold no tabs or newlines.
std::string encode(const ShardResult& r) {
  std::string s = fmt::format("{} {}\n", r.file.file, r.file.bytes);
  for (const auto& c : r.chunks) {
    std::string shape;
    for (std::size_t d = 0; d < c.slice.shape.size(); ++d) shape += fmt::format("{}{}", d ? "," : "", c.slice.shape[d]);
    s += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n", c.slice.tensor, shape, c.slice.begin, c.slice.end,
                     c.slice.stride, c.slice.count, c.chunk.offset, hex64(c.chunk.xxh64));
  }
  return s;
}

ShardResult decode_shard_result(const std::string& text) {
  std::istringstream in(text);
  ShardResult r;
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error("checkpoint: empty shard report");
  std::istringstream head(line);
  if (!(head >> r.file.file >> r.file.bytes)) throw std::runtime_error("checkpoint: bad shard report: " + line);
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::size_t start = 0;
    for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) {
      f.push_back(line.substr(start, tab - start));
    }
    f.push_back(line.substr(start));
    if (f.size() != 8) throw std::runtime_error("checkpoint: bad shard report line: " + line);
    WrittenChunk c;
    c.slice.tensor = f[0];
    std::istringstream dims(f[1]);
    for (std::string d; std::getline(dims, d, ',');) c.slice.shape.push_back(std::stoll(d));
    c.slice.begin = std::stoll(f[2]);
    c.slice.end = std::stoll(f[3]);
    c.slice.stride = std::stoll(f[4]);
    c.slice.count = std::stoll(f[5]);
    const auto h = parse_hex64(f[7]);
    if (!h) throw std::runtime_error("checkpoint: bad checksum in shard report: " + line);
    c.chunk = Chunk{r.file.file, std::stoull(f[6]), c.slice.begin, c.slice.end, *h, c.slice.stride, c.slice.count};
    r.chunks.push_back(std::move(c));
  }
  return r;
}

void ensure_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!std::filesystem::is_directory(dir)) {
    throw std::runtime_error(fmt::format("{}: cannot create directory: {}", dir.string(), ec.message()));
  }
}

void fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);  // best effort: some filesystems refuse fsync on directories
  ::close(fd);
}

}  // namespace trainer::checkpoint
