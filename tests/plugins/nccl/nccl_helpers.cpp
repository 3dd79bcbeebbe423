#include "nccl_helpers.hpp"

#include <cmath>
#include <exception>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

namespace nccl_test {

bool MemoryStore::has_all(const std::vector<std::string>& keys) const {
  for (const auto& k : keys) {
    if (!data_.count(k)) return false;
  }
  return true;
}

void MemoryStore::set(const std::string& key, const std::vector<std::uint8_t>& value) {
  {
    std::lock_guard lock(m_);
    data_[key] = value;
  }
  cv_.notify_all();
}

std::vector<std::uint8_t> MemoryStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  wait({key}, timeout);
  std::lock_guard lock(m_);
  return data_.at(key);
}

std::int64_t MemoryStore::add(const std::string& key, std::int64_t delta) {
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

void MemoryStore::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  std::unique_lock lock(m_);
  if (!cv_.wait_for(lock, timeout, [&] { return has_all(keys); })) {
    throw trainer::StoreError("memory store: timed out waiting for " + keys.front());
  }
}

bool MemoryStore::check(const std::vector<std::string>& keys) {
  std::lock_guard lock(m_);
  return has_all(keys);
}

std::vector<Rank> make_ranks(int world, const std::map<std::string, std::string>& comm_overrides) {
  std::vector<Rank> ranks;
  for (int r = 0; r < world; ++r) {
    Rank rank;
    try {
      rank.backend = trainer::test::make_plugin<trainer::Backend>(trainer::PluginKind::backend, "cuda",
                                                                  {{"device", std::to_string(r)}});
    } catch (const std::runtime_error& e) {
      // Only "no GPU" / "too few GPUs" skip; any other failure is the test's.
      const std::string what = e.what();
      if (what.find("no CUDA device is visible") == std::string::npos &&
          what.find("CUDA device(s) are visible") == std::string::npos) {
        throw;
      }
      WARN("nccl tests need " << world << " GPUs: skipped (" << what << ")");
      return {};
    }
    rank.comm = trainer::test::make_plugin<trainer::CommBackend>(trainer::PluginKind::comm, "nccl", comm_overrides,
                                                                 rank.backend.object.get());
    ranks.push_back(std::move(rank));
  }
  return ranks;
}

trainer::GroupSpec group(const std::string& name, int world, int global_rank, std::chrono::milliseconds timeout) {
  trainer::GroupSpec spec;
  spec.name = name;
  for (int r = 0; r < world; ++r) spec.ranks.push_back(r);
  spec.global_rank = global_rank;
  spec.timeout = timeout;
  return spec;
}

void run_ranks(int world, const std::function<void(int)>& fn) {
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

trainer::Tensor to_device(trainer::Backend& be, trainer::DType dtype, const void* data, std::int64_t numel) {
  auto t = be.allocate({numel}, dtype);
  if (numel > 0) be.copy_from_host(t, data);
  return t;
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-12, 12);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(mantissa(rng), exponent(rng));
  return v;
}

}  // namespace nccl_test
