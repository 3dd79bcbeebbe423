// TcpStoreClient: a blocking request/response client over one socket. Timeouts of get/wait
// are enforced by the server (it answers "timeout" with the missing keys), so the client's
// own deadline only guards against a server or network that went away.
#include <algorithm>
#include <thread>

#include "launch/net.hpp"
#include "launch/store_protocol.hpp"
#include "launch/tcp_store.hpp"

namespace trainer::launch {

namespace {

using protocol::Decoder;
using protocol::Encoder;
using protocol::Op;
using protocol::Status;

// How much longer than the server's own timeout we wait for a reply before declaring the
// connection dead. Generous: a loaded master node may be slow, but never this slow.
constexpr std::chrono::milliseconds kReplyMargin{30'000};

std::string quoted_keys(const std::vector<std::string>& keys) {
  std::string out = keys.size() == 1 ? "key " : "keys ";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i) out += ", ";
    out += '\'';
    out += keys[i];
    out += '\'';
  }
  return out;
}

}  // namespace

TcpStoreClient::TcpStoreClient(std::string host, int port, std::chrono::milliseconds connect_timeout)
    : host_(std::move(host)), port_(port), endpoint_(join_host_port(host_, port_)) {
  auto deadline = Clock::now() + connect_timeout;
  auto backoff = std::chrono::milliseconds(10);
  std::string error;
  for (;;) {
    // Each attempt is bounded too, so one silent address cannot eat the whole budget.
    auto attempt_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(10));
    UniqueFd fd = try_connect_tcp(host_, port_, attempt_deadline, error);
    if (fd) {
      Encoder hello;
      hello.u8(static_cast<std::uint8_t>(Op::hello)).u32(protocol::kMagic).u32(protocol::kVersion);
      auto& frame = hello.frame();
      std::uint8_t header[4];
      error = write_exact(fd.get(), frame.data(), frame.size(), attempt_deadline);
      if (error.empty()) error = read_exact(fd.get(), header, 4, attempt_deadline);
      if (error.empty()) {
        std::uint32_t len = protocol::frame_length(header);
        if (len > 4096) fail("the server at this address is not a trainer store");
        std::vector<std::uint8_t> body(len);
        error = read_exact(fd.get(), body.data(), len, attempt_deadline);
        if (error.empty()) {
          Decoder d(body.data(), body.size());
          try {
            if (static_cast<Status>(d.u8()) != Status::ok) fail(d.str());
          } catch (const protocol::ProtocolError&) {
            fail("the server at this address is not a trainer store");
          }
          fd_ = std::move(fd);
          return;
        }
      }
    }
    auto now = Clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(std::min<Clock::duration>(backoff, deadline - now));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
  fail("could not connect within " + std::to_string(connect_timeout.count()) + " ms: " + error);
}

TcpStoreClient::~TcpStoreClient() = default;

void TcpStoreClient::fail(const std::string& what) {
  std::string msg = "store ";
  msg += endpoint_;
  msg += ": ";
  msg += what;
  throw StoreError(msg);
}

std::vector<std::uint8_t> TcpStoreClient::round_trip(const std::vector<std::uint8_t>& frame,
                                                     std::chrono::milliseconds server_wait) {
  if (!broken_.empty()) fail("connection unusable after an earlier failure (" + broken_ + ")");
  auto now = Clock::now();
  std::string error = write_exact(fd_.get(), frame.data(), frame.size(), now + kReplyMargin);
  std::uint8_t header[4];
  auto reply_deadline = now + std::max(server_wait, std::chrono::milliseconds(0)) + kReplyMargin;
  if (error.empty()) error = read_exact(fd_.get(), header, 4, reply_deadline);
  std::vector<std::uint8_t> body;
  if (error.empty()) {
    std::uint32_t len = protocol::frame_length(header);
    if (len > protocol::kMaxFrame) {
      error = "malformed reply";
    } else {
      body.resize(len);
      error = read_exact(fd_.get(), body.data(), len, reply_deadline);
    }
  }
  if (!error.empty()) {
    // A request may be half sent or a reply half read: the stream cannot be trusted again.
    broken_ = error;
    fd_.reset();
    fail(error);
  }
  return body;
}

void TcpStoreClient::set(const std::string& key, const std::vector<std::uint8_t>& value) {
  Encoder e;
  e.u8(static_cast<std::uint8_t>(Op::set)).str(key).bytes(value);
  std::lock_guard lock(mutex_);
  auto body = round_trip(e.frame(), {});
  Decoder d(body.data(), body.size());
  if (static_cast<Status>(d.u8()) != Status::ok) fail("set '" + key + "' failed: " + d.str());
}

std::vector<std::uint8_t> TcpStoreClient::get(const std::string& key, std::chrono::milliseconds timeout) {
  Encoder e;
  e.u8(static_cast<std::uint8_t>(Op::get)).str(key).i64(timeout.count());
  std::lock_guard lock(mutex_);
  auto body = round_trip(e.frame(), timeout);
  Decoder d(body.data(), body.size());
  auto status = static_cast<Status>(d.u8());
  if (status == Status::ok) return d.bytes();
  if (status == Status::timeout)
    fail("timed out after " + std::to_string(timeout.count()) + " ms waiting for key '" + key + "'");
  fail("get '" + key + "' failed: " + d.str());
}

std::int64_t TcpStoreClient::add(const std::string& key, std::int64_t delta) {
  Encoder e;
  e.u8(static_cast<std::uint8_t>(Op::add)).str(key).i64(delta);
  std::lock_guard lock(mutex_);
  auto body = round_trip(e.frame(), {});
  Decoder d(body.data(), body.size());
  if (static_cast<Status>(d.u8()) != Status::ok) fail("add '" + key + "' failed: " + d.str());
  return d.i64();
}

void TcpStoreClient::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  Encoder e;
  e.u8(static_cast<std::uint8_t>(Op::wait)).u32(static_cast<std::uint32_t>(keys.size()));
  for (auto& k : keys) e.str(k);
  e.i64(timeout.count());
  std::lock_guard lock(mutex_);
  auto body = round_trip(e.frame(), timeout);
  Decoder d(body.data(), body.size());
  auto status = static_cast<Status>(d.u8());
  if (status == Status::ok) return;
  if (status == Status::timeout) {
    std::vector<std::string> missing(d.u32());
    for (auto& k : missing) k = d.str();
    fail("timed out after " + std::to_string(timeout.count()) + " ms waiting for " + quoted_keys(missing));
  }
  fail("wait failed: " + d.str());
}

bool TcpStoreClient::check(const std::vector<std::string>& keys) {
  Encoder e;
  e.u8(static_cast<std::uint8_t>(Op::check)).u32(static_cast<std::uint32_t>(keys.size()));
  for (auto& k : keys) e.str(k);
  std::lock_guard lock(mutex_);
  auto body = round_trip(e.frame(), {});
  Decoder d(body.data(), body.size());
  if (static_cast<Status>(d.u8()) != Status::ok) fail("check failed: " + d.str());
  return d.u8() != 0;
}

}  // namespace trainer::launch
