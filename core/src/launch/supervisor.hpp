// supervise(): the per-node process supervisor behind `trainer run --nproc N`. On node 0 it
// serves the job's rendezvous store; on every node it starts nproc workers, relays their
// output line by line with a "[rank R] " prefix, and stops them all as soon as one fails
// or the supervisor itself is asked to stop (SIGINT, SIGTERM).
//
// Intended use in the `trainer run` command (the wiring belongs to apps/trainer):
//
//   namespace tl = trainer::launch;
//   auto env = tl::environment_map();
//   if (auto id = tl::worker_identity_from_env(env)) {
//     // This process is a worker: rank id->rank of id->world_size.
//     tl::TcpStoreClient store(id->store_addr, id->store_port);
//     return train_as_rank(recipe, *id, store);        // comm plugins rendezvous via `store`
//   }
//   tl::CliLaunchFlags flags;                          // from argv, with tl::parse_launch_flag
//   tl::LaunchConfig cfg = tl::resolve_launch(flags, recipe_launch_nproc, env);
//   if (cfg.nnodes * cfg.nproc == 1) return train_single_process(recipe);
//   // Workers re-run this binary (absolute path, e.g. std::filesystem::read_symlink(
//   // "/proc/self/exe")) with the same recipe and overrides, without the launch flags.
//   std::vector<std::string> worker_argv = {self_exe, "worker", recipe_path, overrides...};
//   return tl::supervise(cfg, worker_argv, {});        // the process's exit code
//
// Exit code: 0 when every worker exits 0; else the first failure's code (its exit status,
// or 128 + signal number); 130 / 143 when the supervisor got SIGINT / SIGTERM first.
//
// Store: node 0 serves it on master_addr:master_port when single-node (port 0: a free one),
// and on every interface at master_port when multi-node (see supervisor.cpp for why). It
// lives as long as node 0's supervise(): in a multi-node job, node 0's workers must exit
// last, after every rank's final store request (e.g. each rank adds 1 to a "left" counter,
// the last one sets "all-left", and only node 0's ranks wait for that key).
//
// Process handling: each worker runs in its own process group (signals go to the whole
// group, so a worker's own children stop too); a worker gets SIGKILL if the supervisor
// dies (PR_SET_PDEATHSIG; call supervise() from the thread that lives longest, normally
// main, since the kernel ties this to the forking thread); stdin is /dev/null.
// supervise() installs handlers for SIGINT, SIGTERM and SIGCHLD and ignores SIGPIPE while
// it runs, restoring them on return; one supervise() at a time per process.
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "launch/launch_config.hpp"

namespace trainer::launch {

struct SupervisorOptions {
  // After the first failure or a stop request: SIGTERM to every worker, then SIGKILL to
  // those still running once this has passed.
  std::chrono::milliseconds grace_period{5000};
  // true: worker lines are prefixed "[rank R] " (stdout lines to stdout_fd, stderr lines to
  // stderr_fd). false: workers write straight to stdout_fd / stderr_fd.
  bool prefix_output = true;
  int stdout_fd = 1;
  int stderr_fd = 2;  // also gets the supervisor's own "trainer: ..." messages
  // Called on node 0 once the store listens, before any worker starts (host, bound port).
  std::function<void(const std::string& host, int port)> on_store_ready;
  // Called once with the first failed worker's rank and exit code (128 + signal number
  // when it was killed); not called for a stop request or when every worker succeeds.
  std::function<void(int rank, int code)> on_worker_failure;
  // Heartbeats (0: off). A running worker whose store counter "heartbeat/<rank>" has not
  // moved for this long (counted from its start) is named, killed with SIGKILL (a stopped
  // process cannot act on SIGTERM) and fails the job with kHeartbeatLostExitCode. Poll:
  // a tenth of it, at most 1 s.
  std::chrono::milliseconds heartbeat_timeout{0};
  // A worker that exits with comm::kCollectiveFailureExitCode has dumped its flight record
  // and asked the others to: the supervisor waits up to this long for the records of the
  // workers that can still write one, then stops the job and prints one diagnosis.
  std::chrono::milliseconds flight_record_wait{3000};
};

// The job's status when the supervisor stopped a worker that stopped heartbeating.
inline constexpr int kHeartbeatLostExitCode = 5;

// Throws LaunchError for an invalid configuration or a worker that cannot be started (any
// already started are killed first), StoreError if node 0 cannot serve the store.
int supervise(const LaunchConfig& config, const std::vector<std::string>& worker_argv,
              const SupervisorOptions& options = {});

}  // namespace trainer::launch
