// Test support for comm plugins (gloo, nccl): ranks as threads of one process meeting in a
// thread-safe in-memory store, RANK_REQUIRE for checks on those threads, and run_ranks.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "trainer/store.hpp"

// Catch2 v2 assertions (and INFO) are not thread-safe, so rank threads check with this: it
// throws, and run_ranks rethrows the first failure on the test's own thread.
#define RANK_REQUIRE(cond, ...)                                     \
  do {                                                              \
    if (!(cond)) {                                                  \
      std::ostringstream rank_require_os;                           \
      rank_require_os << __FILE__ << ":" << __LINE__ << ": " #cond; \
      __VA_OPT__(rank_require_os << " -- " << __VA_ARGS__;)         \
      throw std::runtime_error(rank_require_os.str());              \
    }                                                               \
  } while (0)

namespace trainer::test {

// Thread-safe store shared by the rank threads of one test.
class MemoryStore final : public Store {
 public:
  void set(const std::string& key, const std::vector<std::uint8_t>& value) override {
    {
      std::lock_guard lock(m_);
      data_[key] = value;
    }
    cv_.notify_all();
  }

  std::vector<std::uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) override {
    wait({key}, timeout);
    std::lock_guard lock(m_);
    return data_.at(key);
  }

  std::int64_t add(const std::string& key, std::int64_t delta) override {
    std::int64_t value = 0;
    {
      std::lock_guard lock(m_);
      auto& bytes = data_[key];
      if (!bytes.empty()) value = std::stoll(std::string(bytes.begin(), bytes.end()));
      value += delta;
      const auto text = std::to_string(value);
      bytes.assign(text.begin(), text.end());
    }
    cv_.notify_all();
    return value;
  }

  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(m_);
    if (!cv_.wait_for(lock, timeout, [&] { return has_all(keys); })) {
      throw StoreError("memory store: timed out waiting for " + keys.front());
    }
  }

  bool check(const std::vector<std::string>& keys) override {
    std::lock_guard lock(m_);
    return has_all(keys);
  }

 private:
  bool has_all(const std::vector<std::string>& keys) const {  // the caller holds m_
    for (const auto& k : keys) {
      if (!data_.count(k)) return false;
    }
    return true;
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<std::uint8_t>> data_;
};

// Runs fn(rank) for rank in [0, world) on one thread each and rethrows the first exception
// (after every thread has finished, so a failing rank cannot leave peers dangling).
inline void run_ranks(int world, const std::function<void(int)>& fn) {
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        fn(r);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace trainer::test
