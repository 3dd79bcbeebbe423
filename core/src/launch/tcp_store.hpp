// The rendezvous store of a job, over TCP. The supervisor of node 0 runs a TcpStoreServer;
// every worker reaches it through a TcpStoreClient (a trainer::Store). The wire format is in
// store_protocol.hpp.
//
//   TcpStoreServer server("127.0.0.1", 0);               // port 0: any free port
//   TcpStoreClient store("127.0.0.1", server.port());     // retries until the server is up
//   store.set("gloo/dp/0", bytes);
//   auto peer = store.get("gloo/dp/1", std::chrono::seconds(300));
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "launch/unique_fd.hpp"
#include "trainer/store.hpp"

namespace trainer::launch {

// Serves the store from one background thread (poll-based: a client blocked in get or wait
// costs an entry in a table, not a thread). Keys live until the server is destroyed.
class TcpStoreServer {
 public:
  // Binds host:port and starts serving; throws StoreError if it cannot bind. An empty host
  // listens on every interface.
  TcpStoreServer(const std::string& host, int port);
  // Stops the thread and closes every connection; clients then see "connection closed".
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  const std::string& host() const;
  int port() const;  // the bound port, also when constructed with port 0

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One connection to a store server. Thread-safe: calls are serialized by a mutex, so a
// thread blocked in get() holds up the others on the same client (use one client per thread
// when that matters). After an I/O failure the connection is unusable and every further
// call throws.
class TcpStoreClient : public trainer::Store {
 public:
  // Connects, retrying refused or unresolvable attempts until `connect_timeout`: the server
  // may start later, on another node. Throws StoreError naming host:port on failure.
  TcpStoreClient(std::string host, int port,
                 std::chrono::milliseconds connect_timeout = std::chrono::seconds(60));
  ~TcpStoreClient() override;

  void set(const std::string& key, const std::vector<std::uint8_t>& value) override;
  std::vector<std::uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) override;
  std::int64_t add(const std::string& key, std::int64_t delta) override;
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;
  bool check(const std::vector<std::string>& keys) override;

  const std::string& endpoint() const { return endpoint_; }  // "host:port", as in messages

 private:
  // Sends one request frame and returns the reply body. `server_wait` is how long the
  // server may legitimately hold the reply (get/wait); a reply later than that plus a
  // margin means the server or the network is gone.
  std::vector<std::uint8_t> round_trip(const std::vector<std::uint8_t>& frame, std::chrono::milliseconds server_wait);
  [[noreturn]] void fail(const std::string& what);

  std::string host_;
  int port_;
  std::string endpoint_;
  std::mutex mutex_;
  UniqueFd fd_;
  std::string broken_;  // why the connection is unusable; empty while healthy
};

}  // namespace trainer::launch
