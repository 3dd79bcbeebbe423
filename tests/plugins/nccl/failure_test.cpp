// The nccl comm plugin's failure paths on two GPUs: a collective one rank never joins times
// out within the group's timeout (the communicator is aborted and the error names the group,
// the op and its number), the group is unusable afterwards, a member that never connects
// fails connect(), and bad arguments are refused when the op is issued.
#include <catch2/catch.hpp>

#include <chrono>

#include "nccl_helpers.hpp"

using namespace nccl_test;
using trainer::DType;

namespace {
constexpr int kWorld = 2;
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

TEST_CASE("a rank that never calls all_reduce makes the other's wait throw within the timeout", "[nccl][failure]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  std::string message, later;
  double waited = -1;
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto comm = ranks[static_cast<std::size_t>(r)].comm->connect(group("dp", kWorld, r, 3s), store);
    auto t = to_device(be, DType::f32, std::vector<float>(1 << 20, 1.0f));
    comm->all_reduce(t)->wait();  // both: connections are made, so the next call is issued at once
    if (r == 1) return;            // rank 1 skips the second all_reduce and leaves
    auto work = comm->all_reduce(t);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      work->wait();
    } catch (const trainer::CommError& e) {
      message = e.what();
    }
    waited = seconds_since(t0);
    try {
      comm->all_reduce(t)->wait();
    } catch (const trainer::CommError& e) {
      later = e.what();
    }
  });
  INFO(message);
  REQUIRE(message.find("group 'dp' (rank 0 of 2)") != std::string::npos);
  REQUIRE(message.find("all_reduce #2 of 1048576 f32") != std::string::npos);
  REQUIRE(message.find("timed out after 3000 ms") != std::string::npos);
  REQUIRE(waited >= 2.9);
  REQUIRE(waited < 15.0);  // the timeout, plus the abort
  INFO(later);
  REQUIRE(later.find("unusable") != std::string::npos);
}

TEST_CASE("connect fails with a CommError when a member never shows up", "[nccl][failure][connect]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  const auto t0 = std::chrono::steady_clock::now();
  std::string message;
  try {
    ranks[0].comm->connect(group("lonely", kWorld, 0, 2s), store);
  } catch (const trainer::CommError& e) {
    message = e.what();
  }
  INFO(message);
  REQUIRE(message.find("group 'lonely' (rank 0 of 2)") != std::string::npos);
  REQUIRE(message.find("did not finish within 2000 ms") != std::string::npos);
  REQUIRE(seconds_since(t0) < 15.0);
  // Rank 1 alone: no id is ever published.
  message.clear();
  try {
    ranks[1].comm->connect(group("lonely2", kWorld, 1, 1s), store);
  } catch (const trainer::CommError& e) {
    message = e.what();
  }
  INFO(message);
  REQUIRE(message.find("did not publish the NCCL id within 1000 ms") != std::string::npos);
}

TEST_CASE("bad arguments are refused when the op is issued", "[nccl][failure]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto comm = ranks[static_cast<std::size_t>(r)].comm->connect(group("dp", kWorld, r), store);
    std::vector<float> host_data(4, 1.0f);
    const trainer::Tensor host(std::shared_ptr<void>(), host_data.data(), {4}, DType::f32, trainer::Device::cpu);
    auto expect_refused = [&](const std::function<void()>& call, const std::string& part) {
      try {
        call();
      } catch (const trainer::CommError& e) {
        RANK_REQUIRE(std::string(e.what()).find(part) != std::string::npos, e.what());
        return;
      }
      throw std::runtime_error("not refused: expected '" + part + "'");
    };
    expect_refused([&] { comm->all_reduce(host); }, "not in CUDA device memory");
    auto small = be.allocate({3}, DType::f32);
    auto big = be.allocate({7}, DType::f32);
    expect_refused([&] { comm->reduce_scatter(small, big); }, "input has 7 elements, expected 2 x 3");
    expect_refused([&] { comm->all_gather(big, small); }, "output has 7 elements, expected 2 x 3");
    expect_refused([&] { comm->broadcast(small, 2); }, "root 2 is not a group rank");
    expect_refused([&] { comm->send(small, r); }, "is not another group rank");
    // The group still works: nothing was issued.
    auto t = to_device(be, DType::f32, std::vector<float>(5, 1.0f));
    comm->all_reduce(t)->wait();
    RANK_REQUIRE(to_host<float>(be, t)[4] == 2.0f);
  });
}
