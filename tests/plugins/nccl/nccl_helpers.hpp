// Test support for the nccl comm plugin: ranks as threads of this process, one GPU each, each
// with its own cuda backend and nccl plugin instance, meeting in an in-memory store. Tests
// skip (with a warning) on machines with fewer than two GPUs, which CI is.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/plugins.hpp"
#include "support/rank_threads.hpp"
#include "trainer/backend.hpp"
#include "trainer/comm.hpp"
#include "trainer/store.hpp"

namespace nccl_test {

using namespace std::chrono_literals;
using trainer::test::MemoryStore;
using trainer::test::run_ranks;

// One rank's plugins: a cuda backend on device `rank` and an nccl comm plugin over it.
struct Rank {
  trainer::test::Made<trainer::Backend> backend;
  trainer::test::Made<trainer::CommBackend> comm;
};

// The ranks' plugins for `world` GPUs, or an empty vector (after a WARN) when this machine
// has fewer GPUs. Made on the calling thread, used from the rank threads.
std::vector<Rank> make_ranks(int world, const std::map<std::string, std::string>& comm_overrides = {});

trainer::GroupSpec group(const std::string& name, int world, int global_rank,
                         std::chrono::milliseconds timeout = 60s);


trainer::Tensor to_device(trainer::Backend& be, trainer::DType dtype, const void* data, std::int64_t numel);

template <class T>
trainer::Tensor to_device(trainer::Backend& be, trainer::DType dtype, const std::vector<T>& v) {
  return to_device(be, dtype, v.data(), static_cast<std::int64_t>(v.size()));
}

template <class T>
std::vector<T> to_host(trainer::Backend& be, const trainer::Tensor& t) {
  std::vector<T> v(t.bytes() / sizeof(T));
  if (!v.empty()) be.copy_to_host(v.data(), t);
  return v;
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed);

}  // namespace nccl_test
