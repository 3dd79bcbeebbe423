// SignalRelay: turns SIGINT, SIGTERM and SIGCHLD into bytes on a pipe (the self-pipe
// trick), so the supervisor's poll loop sees them like any other event, whatever thread the
// kernel delivers them to. SIGPIPE is ignored meanwhile, so a closed stdout cannot kill the
// supervisor. Everything is restored on destruction. At most one relay exists at a time.
#pragma once
#include <signal.h>

#include <vector>

#include "launch/unique_fd.hpp"

namespace trainer::launch {

class SignalRelay {
 public:
  SignalRelay();  // throws LaunchError if another relay is active
  ~SignalRelay();
  SignalRelay(const SignalRelay&) = delete;
  SignalRelay& operator=(const SignalRelay&) = delete;

  int fd() const { return read_.get(); }  // readable when a signal arrived
  std::vector<int> drain();               // the signals received since the last drain

  // For a freshly forked child, before exec: puts back the dispositions the relay replaced
  // (handlers would write into the parent's pipe). Async-signal-safe.
  void restore_in_child() const;

 private:
  UniqueFd read_;
  UniqueFd write_;
  struct sigaction old_int_{}, old_term_{}, old_chld_{}, old_pipe_{};
};

}  // namespace trainer::launch
