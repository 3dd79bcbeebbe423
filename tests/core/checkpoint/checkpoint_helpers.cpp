#include "checkpoint_helpers.hpp"

#include <fstream>
#include <stdexcept>
#include <thread>

namespace trainer::test {

void MemoryStore::set(const std::string& key, const std::vector<std::uint8_t>& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  kv_[key] = value;
  cv_.notify_all();
}

std::vector<std::uint8_t> MemoryStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return kv_.count(key) > 0; })) throw StoreError("timeout: " + key);
  return kv_[key];
}

std::int64_t MemoryStore::add(const std::string& key, std::int64_t delta) {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_[key] += delta;
}

void MemoryStore::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto all = [&] {
    for (const auto& k : keys) {
      if (!kv_.count(k)) return false;
    }
    return true;
  };
  if (!cv_.wait_for(lock, timeout, all)) throw StoreError("timeout");
}

bool MemoryStore::check(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& k : keys) {
    if (!kv_.count(k)) return false;
  }
  return true;
}

void write_test_checkpoint(const std::filesystem::path& dir, std::int64_t step, int world, int keep, bool async) {
  MemoryStore store;
  std::vector<std::thread> ranks;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(world));
  for (int r = 0; r < world; ++r) {
    ranks.emplace_back([&, r] {
      try {
        checkpoint::WriterOptions o;
        o.dir = dir;
        o.keep = keep;
        o.async = async;
        o.rank = r;
        o.world = world;
        o.store = &store;
        o.store_prefix = "checkpoint/1";
        o.nonce = "test";
        o.header.world = world;
        o.header.layout = "test";
        o.header.recipe = "model: {plugin: gpt}\nnote: \"quoted\" \\ text\n";
        checkpoint::CheckpointWriter w(o);
        auto& snap = w.begin_snapshot();
        snap = {};
        const auto split = [&](std::int64_t n) {  // this rank's [lo, hi) of n elements
          const std::int64_t s = (n + world - 1) / world;
          return std::pair<std::int64_t, std::int64_t>{std::min(n, s * r), std::min(n, s * (r + 1))};
        };
        const auto [a0, a1] = split(10);
        if (a0 < a1) snap.slices.push_back({"params/a", {10}, a0, a1});
        for (auto i = a0; i < a1; ++i) snap.data.push_back(static_cast<float>(i));
        const auto [b0, b1] = split(6);
        if (b0 < b1) snap.slices.push_back({"params/b", {2, 3}, b0, b1});
        for (auto i = b0; i < b1; ++i) snap.data.push_back(100.0f + static_cast<float>(i));
        w.submit(step);
        w.wait();
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : ranks) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

void flip_byte(const std::filesystem::path& file, std::uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + file.string());
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

}  // namespace trainer::test
