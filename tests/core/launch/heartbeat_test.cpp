// The supervisor's heartbeat watch, with /bin/sh workers that never heartbeat: each is named
// once the heartbeat timeout has passed, killed, and the job fails with status 5.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <regex>

#include "launch/supervisor.hpp"
#include "launch_helpers.hpp"

using namespace std::chrono_literals;
using namespace trainer::launch;
using namespace trainer::launch::test;

TEST_CASE("a worker that never heartbeats is named after the heartbeat timeout", "[launch][heartbeat]") {
  TempDir dir("heartbeat");
  LaunchConfig config;
  config.nproc = 2;
  SupervisorOptions o;
  o.heartbeat_timeout = 600ms;
  o.grace_period = 1s;
  o.stdout_fd = open_output(dir.file("stdout"));
  o.stderr_fd = open_output(dir.file("stderr"));
  int failed_rank = -1, failed_code = 0;
  o.on_worker_failure = [&](int rank, int code) {
    failed_rank = rank;
    failed_code = code;
  };
  const auto start = std::chrono::steady_clock::now();
  const int rc = supervise(config, {"/bin/sh", "-c", "exec sleep 60"}, o);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(o.stdout_fd);
  ::close(o.stderr_fd);
  const auto err = read_lines(dir.file("stderr"));
  CHECK(rc == kHeartbeatLostExitCode);
  CHECK(failed_rank == 0);
  CHECK(failed_code == kHeartbeatLostExitCode);
  CHECK(took >= 600ms);
  CHECK(took < 3s);  // the other worker stops on SIGTERM at once
  REQUIRE_FALSE(err.empty());
  INFO(err.front());
  CHECK(std::regex_match(err.front(), std::regex(R"(trainer: rank 0 \(pid \d+\) stopped heartbeating: none for )"
                                                 R"(\d+\.\d s \(heartbeat timeout 0\.6 s\); it never sent one; )"
                                                 R"(stopping 1 other worker\(s\))")));
}
