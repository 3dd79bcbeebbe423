// Test support for the gloo comm plugin: a folder-backed trainer::Store, host tensors, and
// (from support/rank_threads.hpp) ranks run as threads of this process on an in-memory store.
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
#include "support/rank_threads.hpp"
#include "trainer/comm.hpp"
#include "trainer/store.hpp"
#include "trainer/tensor.hpp"

namespace gloo_test {

using namespace std::chrono_literals;
using trainer::test::MemoryStore;
using trainer::test::run_ranks;

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
