// The gloo comm plugin across real processes: fork three children that rendezvous through a
// store in a temp folder and run each collective once.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "gloo_helpers.hpp"

using namespace gloo_test;
using trainer::DType;

namespace {

// The child's whole life: returns its exit status (0: every check passed).
int child(int rank, int world, const std::filesystem::path& dir) {
  try {
    FileStore store(dir);
    auto backend = make_backend();
    auto comm = backend->connect(group("procs", {0, 1, 2}, rank, 20s), store);
    // all_reduce: integer-valued floats sum exactly, whatever the order.
    auto t = from_vector(DType::f32, std::vector<float>(100000, float(rank + 1)));
    comm->all_reduce(t)->wait();
    if (to_vector<float>(t) != std::vector<float>(100000, 6.0f)) return 10;
    // reduce_scatter: chunk q of rank p holds 10 * q + p.
    std::vector<float> in;
    for (int q = 0; q < world; ++q) in.insert(in.end(), 1000, float(10 * q + rank));
    auto out = host_tensor(DType::f32, 1000);
    comm->reduce_scatter(out, from_vector(DType::f32, in))->wait();
    if (to_vector<float>(out) != std::vector<float>(1000, float(30 * rank + 3))) return 11;
    // all_gather
    auto gathered = host_tensor(DType::i32, 3 * world);
    comm->all_gather(gathered, from_vector(DType::i32, std::vector<std::int32_t>(3, rank)))->wait();
    const auto g = to_vector<std::int32_t>(gathered);
    for (std::size_t k = 0; k < g.size(); ++k) {
      if (g[k] != static_cast<std::int32_t>(k / 3)) return 12;
    }
    // broadcast from the last rank
    auto b = from_vector(DType::f32, std::vector<float>(50, float(rank)));
    comm->broadcast(b, world - 1)->wait();
    if (to_vector<float>(b) != std::vector<float>(50, float(world - 1))) return 13;
    // send/recv around the ring
    auto recvd = host_tensor(DType::i32, 8);
    auto s = comm->send(from_vector(DType::i32, std::vector<std::int32_t>(8, rank)), (rank + 1) % world);
    comm->recv(recvd, (rank + world - 1) % world)->wait();
    s->wait();
    if (to_vector<std::int32_t>(recvd) != std::vector<std::int32_t>(8, (rank + world - 1) % world)) return 14;
    comm->barrier();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    return 20;
  } catch (...) {
    return 21;
  }
}

}  // namespace

TEST_CASE("three processes run every collective through a file store", "[gloo][process]") {
  if (!plugin_available()) return;
  make_backend();  // load the plugin once before forking, so children only create objects
  TempDir dir;
  const int world = 3;
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const int code = child(r, world, dir.path / "store");
      std::fflush(stderr);
      ::_exit(code);  // never return into Catch2 (or run its destructors) in the child
    }
    pids.push_back(pid);
  }
  // Reap with a deadline, killing stragglers so a hang fails the test instead of the suite.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::vector<int> status(pids.size(), -1);
  std::size_t left = pids.size();
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (status[i] != -1) continue;
      int st = 0;
      if (::waitpid(pids[i], &st, WNOHANG) == pids[i]) {
        status[i] = st;
        --left;
      }
    }
    std::this_thread::sleep_for(10ms);
  }
  for (std::size_t i = 0; i < pids.size(); ++i) {
    const bool hung = status[i] == -1;
    if (hung) {
      ::kill(pids[i], SIGKILL);
      ::waitpid(pids[i], &status[i], 0);
    }
    INFO("rank " << i << " exit status " << WEXITSTATUS(status[i]));
    CHECK_FALSE(hung);
    CHECK(WIFEXITED(status[i]));
    CHECK(WEXITSTATUS(status[i]) == 0);
  }
}
