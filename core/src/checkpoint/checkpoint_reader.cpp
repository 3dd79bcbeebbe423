#include "checkpoint/checkpoint_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "checkpoint/checkpoint_writer.hpp"
#include "checkpoint/checksum.hpp"

namespace trainer::checkpoint {
namespace {

std::vector<char> read_bytes(const std::filesystem::path& file, std::uint64_t offset, std::uint64_t bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CheckpointError(file.string() + ": missing");
  std::vector<char> buf(bytes);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(buf.data(), static_cast<std::streamsize>(bytes));
  if (static_cast<std::uint64_t>(in.gcount()) != bytes) {
    throw CheckpointError(fmt::format("{}: truncated (wanted {} bytes at offset {})", file.string(), bytes, offset));
  }
  return buf;
}

std::uint64_t chunk_bytes(const Chunk& c) { return static_cast<std::uint64_t>(c.numel()) * sizeof(float); }

void check_chunk(const std::filesystem::path& file, const std::string& tensor, const Chunk& c, const char* data) {
  const std::uint64_t bytes = chunk_bytes(c);
  if (xxh64(data, bytes) != c.xxh64) {
    const std::string runs = c.count > 1 ? fmt::format(" x {} stride {}", c.count, c.stride) : "";
    throw CheckpointError(fmt::format("{}: checksum mismatch in bytes [{}, {}) ({} elements [{}, {}){})",
                                      file.string(), c.offset, c.offset + bytes, tensor, c.begin, c.end, runs));
  }
}

}  // namespace

void verify_checkpoint(const std::filesystem::path& dir, const Manifest& m) {
  for (const auto& s : m.shards) {
    const auto file = dir / s.file;
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) throw CheckpointError(file.string() + ": missing");
    if (size != s.bytes) {
      throw CheckpointError(fmt::format("{}: {} bytes, the manifest says {}", file.string(), size, s.bytes));
    }
  }
  for (const auto& t : m.tensors) {
    if (t.dtype != DType::f32) throw CheckpointError(dir.string() + ": tensor " + t.name + " is not f32");
    for (const auto& c : t.chunks) {
      const auto file = dir / c.file;
      const auto buf = read_bytes(file, c.offset, chunk_bytes(c));
      check_chunk(file, t.name, c, buf.data());
    }
  }
}

std::optional<FoundCheckpoint> find_latest_good(const std::filesystem::path& dir, std::vector<std::string>& warnings) {
  auto found = committed_checkpoints(dir);
  std::int64_t newest_committed = found.empty() ? -1 : found.back().first;
  // Temporaries newer than every commit: a save that never finished.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const auto tmp = name.find(".tmp-");
    if (!e.is_directory() || tmp == std::string::npos) continue;
    const auto step = parse_step_dir(name.substr(0, tmp));
    if (step && *step > newest_committed) {
      warnings.push_back(fmt::format("checkpoint {} was never committed (no rename, {} missing); ignoring it",
                                     e.path().string(), (e.path() / "manifest.json").string()));
    }
  }
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    try {
      Manifest m = read_manifest(it->second / "manifest.json");
      if (m.step != it->first) {
        throw CheckpointError(fmt::format("{}: step {} in a directory named for step {}",
                                          (it->second / "manifest.json").string(), m.step, it->first));
      }
      verify_checkpoint(it->second, m);
      return FoundCheckpoint{it->second, std::move(m)};
    } catch (const std::exception& e) {
      const auto next = std::next(it);
      warnings.push_back(fmt::format("checkpoint {} is damaged: {}; {}", it->second.string(), e.what(),
                                     next == found.rend() ? std::string("no earlier checkpoint to fall back to")
                                                          : "falling back to " + next->second.string()));
    }
  }
  return std::nullopt;
}

void read_region(ShardFiles& files, const Manifest& m, const std::string& name, const Region& want, float* out,
                 bool verify) {
  const auto& dir = files.dir();
  const TensorEntry* t = m.find(name);
  if (!t) throw CheckpointError(fmt::format("{}: no tensor '{}' in the checkpoint", dir.string(), name));
  const std::int64_t last = want.numel() > 0 ? want.begin + (want.count - 1) * want.stride + want.run() : 0;
  if (want.begin < 0 || want.run() < 0 || want.count < 1 || last > shape_numel(t->shape)) {
    throw CheckpointError(fmt::format("{}: elements [{}, {}) x {} (stride {}) are outside tensor '{}' of shape {}",
                                      dir.string(), want.begin, want.end, want.count, want.stride, name,
                                      shape_string(t->shape)));
  }
  std::int64_t copied = 0;
  for (const auto& c : t->chunks) {
    const char* data = nullptr;
    std::uint64_t bytes = chunk_bytes(c);
    for_each_overlap(want, Region{c.begin, c.end, c.stride, c.count},
                     [&](std::int64_t at_want, std::int64_t at_chunk, std::int64_t n) {
                       if (!data) {
                         data = files.at(c.file, c.offset, bytes);
                         if (verify) check_chunk(dir / c.file, name, c, data);
                       }
                       std::memcpy(out + at_want, data + at_chunk * static_cast<std::int64_t>(sizeof(float)),
                                   static_cast<std::size_t>(n) * sizeof(float));
                       copied += n;
                     });
  }
  if (copied != want.numel()) {  // parse_manifest checked the cover; a short read means a bad manifest
    throw CheckpointError(fmt::format("{}: tensor '{}': the chunks hold {} of the {} elements asked for",
                                      dir.string(), name, copied, want.numel()));
  }
}

void read_range(const std::filesystem::path& dir, const Manifest& m, const std::string& name, std::int64_t begin,
                std::int64_t end, float* out, bool verify) {
  ShardFiles files(dir);
  if (begin > end) {
    throw CheckpointError(fmt::format("{}: elements [{}, {}) of tensor '{}' are no range", dir.string(), begin, end,
                                      name));
  }
  read_region(files, m, name, Region{begin, end}, out, verify);
}

void remove_stale_temporaries(const std::filesystem::path& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> stale;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_directory() && e.path().filename().string().find(".tmp-") != std::string::npos) stale.push_back(e.path());
  }
  for (const auto& p : stale) std::filesystem::remove_all(p, ec);
}

}  // namespace trainer::checkpoint
