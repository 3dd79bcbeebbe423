// Starting one worker process: fork, then in the child its own process group, a parent-death
// signal, the requested stdout/stderr, and exec. Exec failures come back to the parent
// through a close-on-exec pipe, so a wrong path is an error here, not a mysterious exit 127.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "launch/signal_relay.hpp"
#include "launch/unique_fd.hpp"

namespace trainer::launch {

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0]: an absolute path (no PATH search)
  std::vector<std::string> env;   // the complete environment, NAME=value
  bool capture = true;            // true: stdout/stderr go to pipes returned in SpawnedWorker
  int stdout_fd = 1;              // with capture == false: the worker writes here directly
  int stderr_fd = 2;
};

struct SpawnedWorker {
  pid_t pid = -1;  // also the id of the worker's process group
  UniqueFd out;    // read ends (non-blocking) when captured
  UniqueFd err;
};

// Throws LaunchError when fork or exec fails; nothing is left running then.
SpawnedWorker spawn_worker(const SpawnSpec& spec, const SignalRelay& relay);

}  // namespace trainer::launch
