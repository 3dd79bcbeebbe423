// TcpStoreServer / TcpStoreClient over loopback: the rendezvous semantics comm plugins
// rely on (blocking get, atomic add, wait/check) and the errors a stuck job shows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <future>
#include <numeric>
#include <thread>

#include "launch/tcp_store.hpp"

using namespace std::chrono_literals;
using trainer::StoreError;
using trainer::launch::TcpStoreClient;
using trainer::launch::TcpStoreServer;

namespace {

std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<std::uint8_t>& b) { return {b.begin(), b.end()}; }
std::string endpoint(int port) { return "127.0.0.1:" + std::to_string(port); }

}  // namespace

TEST_CASE("a value set by one client is read by another", "[launch][store]") {
  TcpStoreServer server("127.0.0.1", 0);
  REQUIRE(server.port() > 0);
  TcpStoreClient a("127.0.0.1", server.port());
  TcpStoreClient b("127.0.0.1", server.port());
  CHECK(a.endpoint() == endpoint(server.port()));

  a.set("gloo/dp/0", bytes("10.0.0.1:4000"));
  CHECK(text(b.get("gloo/dp/0", 1s)) == "10.0.0.1:4000");

  // Binary values with zero bytes, an empty value, a large value, and overwriting.
  std::vector<std::uint8_t> binary = {0, 1, 0, 255, 0};
  b.set("bin", binary);
  CHECK(a.get("bin", 1s) == binary);
  a.set("empty", {});
  CHECK(b.get("empty", 1s).empty());
  std::vector<std::uint8_t> large(4 << 20);
  std::iota(large.begin(), large.end(), std::uint8_t{0});
  a.set("large", large);
  CHECK(b.get("large", 5s) == large);
  b.set("gloo/dp/0", bytes("moved"));
  CHECK(text(a.get("gloo/dp/0", 1s)) == "moved");
}

TEST_CASE("get blocks until another client sets the key", "[launch][store]") {
  TcpStoreServer server("127.0.0.1", 0);
  TcpStoreClient reader("127.0.0.1", server.port());
  auto start = std::chrono::steady_clock::now();
  std::thread writer([port = server.port()] {
    TcpStoreClient c("127.0.0.1", port);
    std::this_thread::sleep_for(200ms);
    c.set("late", bytes("here"));
  });
  auto value = reader.get("late", 5s);
  auto waited = std::chrono::steady_clock::now() - start;
  writer.join();
  CHECK(text(value) == "here");
  CHECK(waited >= 150ms);
  CHECK(waited < 3s);
}

TEST_CASE("add is atomic across clients and threads", "[launch][store]") {
  TcpStoreServer server("127.0.0.1", 0);
  constexpr int kThreads = 8;
  constexpr int kAdds = 1000;
  std::vector<std::vector<std::int64_t>> seen(kThreads);

  SECTION("one client per thread") {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        TcpStoreClient c("127.0.0.1", server.port());
        for (int i = 0; i < kAdds; ++i) seen[static_cast<std::size_t>(t)].push_back(c.add("counter", 1));
      });
    for (auto& th : threads) th.join();
  }
  SECTION("one client shared by all threads") {
    TcpStoreClient shared("127.0.0.1", server.port());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kAdds; ++i) seen[static_cast<std::size_t>(t)].push_back(shared.add("counter", 1));
      });
    for (auto& th : threads) th.join();
  }

  // Every increment returned a distinct value: together exactly 1..8000.
  std::vector<std::int64_t> all;
  for (auto& s : seen) all.insert(all.end(), s.begin(), s.end());
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected(kThreads * kAdds);
  std::iota(expected.begin(), expected.end(), 1);
  CHECK(all == expected);

  TcpStoreClient c("127.0.0.1", server.port());
  CHECK(c.add("counter", 0) == kThreads * kAdds);
  CHECK(c.add("counter", -8001) == -1);
  CHECK(text(c.get("counter", 1s)) == "-1");  // counters read back as decimal text
  c.set("not-a-counter", bytes("abc"));
  CHECK_THROWS_WITH(c.add("not-a-counter", 1), Catch::Contains("not a counter"));
  CHECK(c.add("counter", 1) == 0);  // an error reply leaves the connection usable
}

TEST_CASE("check and wait", "[launch][store]") {
  TcpStoreServer server("127.0.0.1", 0);
  TcpStoreClient a("127.0.0.1", server.port());
  TcpStoreClient b("127.0.0.1", server.port());

  CHECK_FALSE(a.check({"x", "y"}));
  CHECK(a.check({}));
  a.set("x", bytes("1"));
  CHECK(a.check({"x"}));
  CHECK_FALSE(a.check({"x", "y"}));

  auto waiter = std::async(std::launch::async, [&] {
    b.wait({"x", "y"}, 5s);
    return true;
  });
  CHECK(waiter.wait_for(100ms) == std::future_status::timeout);  // y is still missing
  a.set("y", bytes("2"));
  CHECK(waiter.get());
  CHECK(b.check({"x", "y"}));

  // A timed-out wait names only the keys that are missing.
  try {
    a.wait({"x", "p", "q"}, 100ms);
    FAIL("wait did not time out");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()) ==
          "store " + endpoint(server.port()) + ": timed out after 100 ms waiting for keys 'p', 'q'");
  }
}

TEST_CASE("a timed-out get names the key and the store address", "[launch][store]") {
  TcpStoreServer server("127.0.0.1", 0);
  TcpStoreClient c("127.0.0.1", server.port());
  auto start = std::chrono::steady_clock::now();
  try {
    c.get("gloo/dp/3", 200ms);
    FAIL("get did not time out");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()) ==
          "store " + endpoint(server.port()) + ": timed out after 200 ms waiting for key 'gloo/dp/3'");
  }
  CHECK(std::chrono::steady_clock::now() - start >= 200ms);
  CHECK_THROWS_WITH(c.get("gloo/dp/3", 0ms), Catch::Contains("'gloo/dp/3'"));
  // The client stays usable after a timeout.
  c.set("gloo/dp/3", bytes("ok"));
  CHECK(text(c.get("gloo/dp/3", 0ms)) == "ok");
}

TEST_CASE("a client started before the server connects once it is up", "[launch][store]") {
  int port = 0;
  {
    TcpStoreServer probe("127.0.0.1", 0);  // find a free port, then free it again
    port = probe.port();
  }
  auto client = std::async(std::launch::async, [port] {
    auto c = std::make_unique<TcpStoreClient>("127.0.0.1", port, 10s);
    return c;
  });
  std::this_thread::sleep_for(300ms);
  CHECK(client.wait_for(0ms) == std::future_status::timeout);  // still retrying
  TcpStoreServer server("127.0.0.1", port);
  auto c = client.get();
  c->set("k", bytes("v"));
  CHECK(text(c->get("k", 1s)) == "v");
}

TEST_CASE("connection failures are StoreErrors naming the address", "[launch][store]") {
  int port = 0;
  {
    TcpStoreServer probe("127.0.0.1", 0);
    port = probe.port();
  }
  auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(TcpStoreClient("127.0.0.1", port, 300ms),
                    Catch::StartsWith("store " + endpoint(port) + ": could not connect within 300 ms"));
  CHECK(std::chrono::steady_clock::now() - start < 3s);

  SECTION("a server that goes away wakes a blocked get") {
    auto server = std::make_unique<TcpStoreServer>("127.0.0.1", 0);
    TcpStoreClient c("127.0.0.1", server->port());
    auto blocked = std::async(std::launch::async, [&] { return c.get("never", 30s); });
    std::this_thread::sleep_for(100ms);
    server.reset();
    CHECK_THROWS_AS(blocked.get(), StoreError);
    CHECK_THROWS_WITH(c.set("k", {}), Catch::Contains("connection unusable"));
  }
  SECTION("binding a port in use fails clearly") {
    TcpStoreServer server("127.0.0.1", 0);
    CHECK_THROWS_WITH(TcpStoreServer("127.0.0.1", server.port()),
                      Catch::Contains("cannot listen on " + endpoint(server.port())));
  }
}
