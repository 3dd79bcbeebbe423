// Test support for the gloo comm plugin: in-memory and folder-backed trainer::Store
// implementations, host tensors, and ranks run as threads of this process.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/plugins.hpp"
#include "trainer/comm.hpp"
#include "trainer/store.hpp"
#include "trainer/tensor.hpp"

// Catch2 v2 assertions (and INFO) are not thread-safe, so rank threads check with this: it
// throws, and run_ranks rethrows the first failure on the test's own thread.
#define RANK_REQUIRE(cond, ...)                                  \
  do {                                                           \
    if (!(cond)) {                                               \
      std::ostringstream rank_require_os;                        \
      rank_require_os << __FILE__ << ":" << __LINE__ << ": " #cond; \
      __VA_OPT__(rank_require_os << " -- " << __VA_ARGS__;)      \
      throw std::runtime_error(rank_require_os.str());           \
    }                                                            \
  } while (0)

namespace gloo_test {

using namespace std::chrono_literals;

// Thread-safe store shared by the rank threads of one test.
class MemoryStore final : public trainer::Store {
 public:
  void set(const std::string& key, const std::vector<std::uint8_t>& value) override;
  std::vector<std::uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) override;
  std::int64_t add(const std::string& key, std::int64_t delta) override;
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;
  bool check(const std::vector<std::string>& keys) override;

 private:
  bool has_all(const std::vector<std::string>& keys) const;  // caller holds m_
  std::mutex m_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<std::uint8_t>> data_;
};

// A store in a folder, one file per key, for ranks in separate processes (the job's TCP
// store stands in for it in real runs). Writes go through a rename so readers never see a
// partial value; add() serialises through flock.
class FileStore final : public trainer::Store {
 public:
  explicit FileStore(std::filesystem::path dir);
  void set(const std::string& key, const std::vector<std::uint8_t>& value) override;
  std::vector<std::uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) override;
  std::int64_t add(const std::string& key, std::int64_t delta) override;
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;
  bool check(const std::vector<std::string>& keys) override;

 private:
  std::filesystem::path path(const std::string& key) const;
  void write(const std::string& key, const std::vector<std::uint8_t>& value);
  std::filesystem::path dir_;
};

// A fresh empty folder under the system temp folder, removed with the object.
struct TempDir {
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path path;
};

// False (with a warning) when gloo is not installed, so the plugin was rightly skipped;
// fails the test when gloo is installed but the plugin was not built.
bool plugin_available();

using Backend = trainer::test::Made<trainer::CommBackend>;
Backend make_backend(const std::map<std::string, std::string>& overrides = {});

trainer::GroupSpec group(const std::string& name, std::vector<int> ranks, int global_rank,
                         std::chrono::milliseconds timeout = 20s);

// Runs fn(rank) for rank in [0, world) on one thread each and rethrows the first exception
// (after every thread has finished, so a failing rank cannot leave peers dangling).
void run_ranks(int world, const std::function<void(int)>& fn);

trainer::Tensor host_tensor(trainer::DType dtype, std::int64_t numel);

template <class T>
trainer::Tensor from_vector(trainer::DType dtype, const std::vector<T>& v) {
  auto t = host_tensor(dtype, static_cast<std::int64_t>(v.size()));
  if (!v.empty()) std::memcpy(t.data(), v.data(), v.size() * sizeof(T));
  return t;
}

template <class T>
std::vector<T> to_vector(const trainer::Tensor& t) {
  std::vector<T> v(static_cast<std::size_t>(t.numel()));
  if (!v.empty()) std::memcpy(v.data(), t.data(), v.size() * sizeof(T));
  return v;
}

// Deterministic values of varied magnitude, so that the order of a float sum shows in its bits.
std::vector<float> random_floats(std::size_t n, std::uint32_t seed);

}  // namespace gloo_test
