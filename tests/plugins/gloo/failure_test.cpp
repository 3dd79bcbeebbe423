// How the gloo comm plugin fails: a rank that never joins a collective makes the others time
// out with a CommError naming the group, the op and its sequence number; the group is then
// poisoned. Bad arguments are refused when the op is issued. Rank threads only record what
// happened: the checks run on the test's thread (Catch2 v2 is not thread-safe).
#include <catch2/catch.hpp>

#include <latch>

#include "gloo_helpers.hpp"

using namespace gloo_test;
using trainer::CommError;
using trainer::DType;
using Clock = std::chrono::steady_clock;

namespace {

std::string message_of(trainer::CommWork& work) {
  try {
    work.wait();
  } catch (const CommError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a rank that never calls all_reduce makes the others time out, then the group is poisoned",
          "[gloo][failure]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  MemoryStore store;
  const auto timeout = 1000ms;
  std::latch others_done(2);
  struct Seen {
    std::string first, second;
    Clock::duration first_took{}, second_took{};
    bool barrier_threw = false;
  };
  std::vector<Seen> seen(2);
  run_ranks(3, [&](int r) {
    auto comm = backend->connect(group("stall", {0, 1, 2}, r, timeout), store);
    auto t = from_vector(DType::f32, std::vector<float>(1000, 1.0f));
    comm->all_reduce(t)->wait();  // #1 succeeds on every rank
    if (r == 2) {
      // Stays connected (so peers see silence, not a closed socket) until they gave up.
      others_done.wait();
      return;
    }
    auto& s = seen[static_cast<std::size_t>(r)];
    auto start = Clock::now();
    auto work = comm->all_reduce(t);  // #2: rank 2 never joins
    s.first = message_of(*work);
    s.first_took = Clock::now() - start;
    // Poisoned: later ops fail at once, naming the first failure.
    start = Clock::now();
    auto later = comm->all_reduce(t);
    s.second = message_of(*later);
    s.second_took = Clock::now() - start;
    try {
      comm->barrier();
    } catch (const CommError&) {
      s.barrier_threw = true;
    }
    others_done.count_down();
  });
  for (int r = 0; r < 2; ++r) {
    const auto& s = seen[static_cast<std::size_t>(r)];
    INFO("rank " << r << " first: " << s.first << "\nsecond: " << s.second);
    CHECK(s.first_took >= timeout - 50ms);
    CHECK(s.first_took < timeout + 2s);
    CHECK(contains(s.first, std::string("group 'stall' (rank ").append(std::to_string(r)).append(" of 3)")));
    CHECK(contains(s.first, "all_reduce #2 of 1000 f32 failed: timed out after 1000 ms"));
    CHECK(s.second_took < 500ms);
    CHECK(contains(s.second, "all_reduce #3 of 1000 f32 not run"));
    CHECK(contains(s.second, "unusable since all_reduce #2 of 1000 f32 failed: timed out"));
    CHECK(s.barrier_threw);
  }
}

TEST_CASE("a recv nobody sends to times out within the recipe's timeout_s", "[gloo][failure]") {
  if (!plugin_available()) return;
  // The group asks for 300 s; the recipe caps it at 0.5 s.
  auto backend = make_backend({{"timeout_s", "0.5"}});
  MemoryStore store;
  std::latch done(1);
  std::string msg;
  Clock::duration took{};
  run_ranks(2, [&](int r) {
    auto comm = backend->connect(group("p2p", {0, 1}, r, 300s), store);
    if (r == 1) {
      done.wait();
      return;
    }
    auto t = host_tensor(DType::f32, 16);
    const auto start = Clock::now();
    auto work = comm->recv(t, 1);
    msg = message_of(*work);
    took = Clock::now() - start;
    done.count_down();
  });
  INFO(msg);
  CHECK(took < 2500ms);
  CHECK(contains(msg, "group 'p2p' (rank 0 of 2): recv #1 of 16 f32 from rank 1 failed: timed out after 500 ms"));
}

TEST_CASE("connect fails with a CommError when a member never shows up", "[gloo][failure]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  MemoryStore store;
  const auto start = Clock::now();
  try {
    backend->connect(group("lonely", {0, 1}, 0, 500ms), store);
    FAIL("connect returned without its peer");
  } catch (const CommError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(contains(msg, "group 'lonely' (rank 0 of 2): connect"));
  }
  CHECK(Clock::now() - start < 2500ms);
}

TEST_CASE("bad arguments are refused when the op is issued", "[gloo][failure]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  MemoryStore store;
  CHECK_THROWS_AS(backend->connect(group("outsider", {0, 1}, 7), store), CommError);
  std::vector<int> refused(2, 0);
  std::vector<std::string> first_message(2);
  run_ranks(2, [&](int r) {
    auto comm = backend->connect(group("args", {0, 1}, r), store);
    auto a = host_tensor(DType::f32, 6);
    auto b = host_tensor(DType::f32, 4);
    const std::vector<std::function<void()>> bad = {
        [&] { comm->reduce_scatter(b, a); },
        [&] { comm->all_gather(a, b); },
        [&] { comm->all_gather(b, host_tensor(DType::i32, 2)); },
        [&] { comm->broadcast(a, 2); },
        [&] { comm->send(a, r); },
        [&] { comm->recv(a, -1); },
    };
    for (const auto& call : bad) {
      try {
        call();
      } catch (const CommError& e) {
        ++refused[static_cast<std::size_t>(r)];
        if (first_message[static_cast<std::size_t>(r)].empty()) first_message[static_cast<std::size_t>(r)] = e.what();
      }
    }
    // Refused ops consumed no sequence number: the group still works in step.
    comm->all_reduce(a)->wait();
    comm->barrier();
  });
  for (int r = 0; r < 2; ++r) {
    CHECK(refused[static_cast<std::size_t>(r)] == 6);
    CHECK(contains(first_message[static_cast<std::size_t>(r)], "group 'args'"));
    CHECK(contains(first_message[static_cast<std::size_t>(r)], "reduce_scatter: input has 6 elements, expected 2 x 4"));
  }
}
