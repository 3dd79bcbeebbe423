// TcpStoreServer: one thread, poll(), a table of connections. Each connection buffers its
// input and output; a client blocked in get/wait is parked with a deadline and answered
// when a set or add supplies its keys, or when the deadline passes.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <map>
#include <optional>
#include <thread>
#include <unordered_map>

#include "launch/net.hpp"
#include "launch/store_protocol.hpp"
#include "launch/tcp_store.hpp"

namespace trainer::launch {

namespace {

using protocol::Decoder;
using protocol::Encoder;
using protocol::Op;
using protocol::Status;

struct Waiter {
  bool is_get = false;  // get answers with the value; wait with nothing
  std::vector<std::string> keys;
  Clock::time_point deadline;
};

struct Conn {
  UniqueFd fd;
  std::vector<std::uint8_t> in;
  std::vector<std::uint8_t> out;
  std::size_t out_sent = 0;
  std::optional<Waiter> waiter;
  bool closing = false;
};

Clock::time_point deadline_after(std::int64_t timeout_ms) {
  // Clamp so that "wait forever" style values cannot overflow the clock's nanoseconds.
  constexpr std::int64_t kMaxMs = 10LL * 365 * 24 * 3600 * 1000;
  return Clock::now() + std::chrono::milliseconds(std::clamp<std::int64_t>(timeout_ms, 0, kMaxMs));
}

std::optional<std::int64_t> parse_counter(const std::vector<std::uint8_t>& value) {
  std::int64_t v = 0;
  auto* first = reinterpret_cast<const char*>(value.data());
  auto [end, ec] = std::from_chars(first, first + value.size(), v);
  if (ec != std::errc() || end != first + value.size()) return std::nullopt;
  return v;
}

}  // namespace

struct TcpStoreServer::Impl {
  std::string host;
  int port = 0;
  UniqueFd listen_fd;
  UniqueFd wake_read;
  UniqueFd wake_write;
  std::unordered_map<std::string, std::vector<std::uint8_t>> data;
  std::map<int, Conn> conns;
  std::thread thread;

  void run();
  void serve();
  void accept_all();
  void read_from(Conn& c);
  void process(Conn& c);
  void handle(Conn& c, Decoder& d);
  bool try_answer(Conn& c);
  void answer_waiters();
  void expire_waiters();
  void reply(Conn& c, Encoder& e);
  void flush(Conn& c);
  int poll_timeout_ms() const;
};

TcpStoreServer::TcpStoreServer(const std::string& host, int port) : impl_(std::make_unique<Impl>()) {
  impl_->host = host;
  try {
    impl_->listen_fd = listen_tcp(host, port, impl_->port);
  } catch (const std::exception& e) {
    throw StoreError(std::string("store server: ") + e.what());
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw StoreError("store server: cannot create a pipe");
  impl_->wake_read.reset(fds[0]);
  impl_->wake_write.reset(fds[1]);
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

TcpStoreServer::~TcpStoreServer() {
  char byte = 1;
  (void)!::write(impl_->wake_write.get(), &byte, 1);
  impl_->thread.join();
}

const std::string& TcpStoreServer::host() const { return impl_->host; }
int TcpStoreServer::port() const { return impl_->port; }

void TcpStoreServer::Impl::run() {
  try {
    serve();
  } catch (const std::exception& e) {
    // Only resource exhaustion gets here; request errors close just their connection.
    std::fprintf(stderr, "trainer: store server %s stopped: %s\n", join_host_port(host, port).c_str(), e.what());
  }
  conns.clear();
}

int TcpStoreServer::Impl::poll_timeout_ms() const {
  std::optional<Clock::time_point> next;
  for (auto& [fd, c] : conns)
    if (c.waiter && (!next || c.waiter->deadline < *next)) next = c.waiter->deadline;
  if (!next) return -1;
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*next - Clock::now()).count();
  if (ns <= 0) return 0;
  auto ms = (ns + 999'999) / 1'000'000;  // round up, so that waking finds the deadline passed
  return ms > 1'000'000 ? 1'000'000 : static_cast<int>(ms);
}

void TcpStoreServer::Impl::serve() {
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_read.get(), POLLIN, 0});
    fds.push_back({listen_fd.get(), POLLIN, 0});
    for (auto& [fd, c] : conns)
      fds.push_back({fd, static_cast<short>(POLLIN | (c.out_sent < c.out.size() ? POLLOUT : 0)), 0});
    int rc = ::poll(fds.data(), fds.size(), poll_timeout_ms());
    if (rc < 0 && errno != EINTR) throw std::runtime_error("poll failed");
    if (fds[0].revents) return;
    if (fds[1].revents & POLLIN) accept_all();
    for (std::size_t i = 2; i < fds.size(); ++i) {
      auto it = conns.find(fds[i].fd);
      if (it == conns.end() || !fds[i].revents) continue;
      if (fds[i].revents & POLLOUT) flush(it->second);
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) read_from(it->second);
    }
    expire_waiters();
    std::erase_if(conns, [](auto& kv) { return kv.second.closing; });
  }
}

void TcpStoreServer::Impl::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection that vanished before we took it
    set_nodelay(fd);
    conns[fd].fd.reset(fd);
  }
}

void TcpStoreServer::Impl::read_from(Conn& c) {
  std::uint8_t buf[64 * 1024];
  for (;;) {
    ssize_t r = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (r > 0) {
      c.in.insert(c.in.end(), buf, buf + r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    c.closing = true;  // orderly close or error: drop the connection and any parked request
    return;
  }
  try {
    process(c);
  } catch (const protocol::ProtocolError&) {
    c.closing = true;  // a malformed or foreign peer
  }
}

void TcpStoreServer::Impl::process(Conn& c) {
  std::size_t used = 0;
  // A parked client sent nothing else (one request at a time); if it did, it waits its turn.
  while (!c.waiter && !c.closing && c.in.size() - used >= 4) {
    std::uint32_t len = protocol::frame_length(c.in.data() + used);
    if (len > protocol::kMaxFrame) throw protocol::ProtocolError("frame too large");
    if (c.in.size() - used - 4 < len) break;
    Decoder d(c.in.data() + used + 4, len);
    used += 4 + len;
    handle(c, d);
  }
  c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(used));
}

void TcpStoreServer::Impl::handle(Conn& c, Decoder& d) {
  Encoder e;
  auto op = static_cast<Op>(d.u8());
  switch (op) {
    case Op::hello: {
      std::uint32_t magic = d.u32();
      std::uint32_t version = d.u32();
      if (magic != protocol::kMagic || version != protocol::kVersion) {
        e.u8(static_cast<std::uint8_t>(Status::error))
            .str("protocol mismatch: server speaks version " + std::to_string(protocol::kVersion));
        reply(c, e);
        c.closing = true;
        return;
      }
      e.u8(static_cast<std::uint8_t>(Status::ok));
      break;
    }
    case Op::set: {
      std::string key = d.str();
      data[key] = d.bytes();
      e.u8(static_cast<std::uint8_t>(Status::ok));
      reply(c, e);
      answer_waiters();
      return;
    }
    case Op::add: {
      std::string key = d.str();
      std::int64_t delta = d.i64();
      std::int64_t value = 0;
      if (auto it = data.find(key); it != data.end()) {
        auto current = parse_counter(it->second);
        if (!current) {
          e.u8(static_cast<std::uint8_t>(Status::error)).str("key '" + key + "' holds a value that is not a counter");
          break;
        }
        value = *current;
      }
      if (__builtin_add_overflow(value, delta, &value)) {
        e.u8(static_cast<std::uint8_t>(Status::error)).str("counter '" + key + "' would overflow");
        break;
      }
      // Stored as decimal text, so that get() on a counter reads naturally.
      std::string text = std::to_string(value);
      data[key].assign(text.begin(), text.end());
      e.u8(static_cast<std::uint8_t>(Status::ok)).i64(value);
      reply(c, e);
      answer_waiters();
      return;
    }
    case Op::check: {
      std::uint32_t n = d.u32();
      bool all = true;
      for (std::uint32_t i = 0; i < n; ++i) all = data.count(d.str()) > 0 && all;
      e.u8(static_cast<std::uint8_t>(Status::ok)).u8(all ? 1 : 0);
      break;
    }
    case Op::get:
    case Op::wait: {
      Waiter w;
      w.is_get = op == Op::get;
      std::uint32_t n = w.is_get ? 1 : d.u32();
      for (std::uint32_t i = 0; i < n; ++i) w.keys.push_back(d.str());
      w.deadline = deadline_after(d.i64());
      c.waiter = std::move(w);
      if (!try_answer(c) && Clock::now() >= c.waiter->deadline) expire_waiters();
      return;
    }
    default:
      throw protocol::ProtocolError("unknown operation");
  }
  reply(c, e);
}

// Answers a parked get/wait if all its keys exist now.
bool TcpStoreServer::Impl::try_answer(Conn& c) {
  for (auto& k : c.waiter->keys)
    if (!data.count(k)) return false;
  Encoder e;
  e.u8(static_cast<std::uint8_t>(Status::ok));
  if (c.waiter->is_get) e.bytes(data[c.waiter->keys.front()]);
  c.waiter.reset();
  reply(c, e);
  return true;
}

void TcpStoreServer::Impl::answer_waiters() {
  for (auto& [fd, c] : conns)
    if (c.waiter && !c.closing && try_answer(c)) process(c);
}

void TcpStoreServer::Impl::expire_waiters() {
  auto now = Clock::now();
  for (auto& [fd, c] : conns) {
    if (!c.waiter || c.closing || now < c.waiter->deadline) continue;
    Encoder e;
    std::vector<std::string> missing;
    for (auto& k : c.waiter->keys)
      if (!data.count(k)) missing.push_back(k);
    e.u8(static_cast<std::uint8_t>(Status::timeout)).u32(static_cast<std::uint32_t>(missing.size()));
    for (auto& k : missing) e.str(k);
    c.waiter.reset();
    reply(c, e);
  }
}

void TcpStoreServer::Impl::reply(Conn& c, Encoder& e) {
  auto& frame = e.frame();
  c.out.insert(c.out.end(), frame.begin(), frame.end());
  flush(c);
}

void TcpStoreServer::Impl::flush(Conn& c) {
  while (c.out_sent < c.out.size()) {
    ssize_t w = ::send(c.fd.get(), c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (w > 0) {
      c.out_sent += static_cast<std::size_t>(w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;  // the poll loop resumes on POLLOUT
    } else {
      c.closing = true;
      return;
    }
  }
  c.out.clear();
  c.out_sent = 0;
}

}  // namespace trainer::launch
