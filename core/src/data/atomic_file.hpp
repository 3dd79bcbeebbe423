// Atomic file replacement: readers see either the old file or the complete new one, never
// a partial write, even if the process dies mid-way (write <path>.tmp, fsync, rename).
#pragma once
#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

namespace trainer::data {

class AtomicFile {
 public:
  // Creates (truncates) <path>.tmp; throws std::runtime_error naming the file on failure.
  explicit AtomicFile(std::filesystem::path path);
  // Not committed: the temporary is removed, the target is left untouched.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> bytes);
  void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }
  // fsync the data, rename over the target, fsync the directory so the rename is durable.
  void commit();

 private:
  std::filesystem::path path_;
  std::filesystem::path tmp_;
  int fd_ = -1;
};

// Whole-file convenience for small text files such as dataset.json.
void write_text_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace trainer::data
