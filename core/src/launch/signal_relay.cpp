#include "launch/signal_relay.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <utility>

#include "launch/launch_config.hpp"

namespace trainer::launch {

namespace {

std::atomic<int> g_write_fd{-1};

extern "C" void relay_handler(int sig) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(sig);
  int fd = g_write_fd.load(std::memory_order_relaxed);
  // Non-blocking: if the pipe is full, enough wake-ups are already queued.
  if (fd >= 0) (void)!::write(fd, &byte, 1);
  errno = saved;
}

void install(int sig, void (*handler)(int), int flags, struct sigaction* old) {
  struct sigaction sa{};
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  ::sigaction(sig, &sa, old);
}

}  // namespace

SignalRelay::SignalRelay() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw LaunchError("cannot create the signal pipe");
  read_.reset(fds[0]);
  write_.reset(fds[1]);
  int expected = -1;
  if (!g_write_fd.compare_exchange_strong(expected, write_.get()))
    throw LaunchError("supervise() is already running in this process");
  install(SIGINT, relay_handler, SA_RESTART, &old_int_);
  install(SIGTERM, relay_handler, SA_RESTART, &old_term_);
  install(SIGCHLD, relay_handler, SA_RESTART | SA_NOCLDSTOP, &old_chld_);
  install(SIGPIPE, SIG_IGN, 0, &old_pipe_);
}

SignalRelay::~SignalRelay() {
  ::sigaction(SIGINT, &old_int_, nullptr);
  ::sigaction(SIGTERM, &old_term_, nullptr);
  ::sigaction(SIGCHLD, &old_chld_, nullptr);
  ::sigaction(SIGPIPE, &old_pipe_, nullptr);
  g_write_fd.store(-1);
}

std::vector<int> SignalRelay::drain() {
  std::vector<int> out;
  unsigned char buf[64];
  for (;;) {
    ssize_t n = ::read(read_.get(), buf, sizeof buf);
    if (n > 0) {
      out.insert(out.end(), buf, buf + n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return out;
    }
  }
}

void SignalRelay::restore_in_child() const {
  // Default, unless the supervisor's own parent had the signal ignored (nohup and the like):
  // exec keeps ignored signals ignored, as it would without the relay.
  for (auto [sig, old] : {std::pair{SIGINT, &old_int_}, {SIGTERM, &old_term_}, {SIGCHLD, &old_chld_},
                          {SIGPIPE, &old_pipe_}}) {
    struct sigaction sa{};
    sa.sa_handler = old->sa_handler == SIG_IGN ? SIG_IGN : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
}

}  // namespace trainer::launch
