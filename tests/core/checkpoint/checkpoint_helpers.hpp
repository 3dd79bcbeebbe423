// Checkpoint test support: an in-memory Store, and a small checkpoint written through the
// real writer from known values.
#pragma once
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_writer.hpp"
#include "trainer/store.hpp"

namespace trainer::test {

class MemoryStore : public Store {
 public:
  void set(const std::string& key, const std::vector<std::uint8_t>& value) override;
  std::vector<std::uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) override;
  std::int64_t add(const std::string& key, std::int64_t delta) override;
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;
  bool check(const std::vector<std::string>& keys) override;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<std::uint8_t>> kv_;
  std::map<std::string, std::int64_t> counters_;
};

// Tensor "params/a" (shape {10}, values i) and "params/b" (shape {2, 3}, values 100 + i),
// written by `world` ranks that each own an equal split, as one checkpoint at `step`.
void write_test_checkpoint(const std::filesystem::path& dir, std::int64_t step, int world = 1, int keep = 0,
                           bool async = true);

// Flips one byte of `file` at `offset`.
void flip_byte(const std::filesystem::path& file, std::uint64_t offset);

}  // namespace trainer::test
