// supervise() with real processes: /bin/sh workers, and this test binary re-executed as a
// store-using worker (launch_helpers.cpp). The supervisor's output goes to files through
// SupervisorOptions::stdout_fd / stderr_fd; the signal tests run it in a forked child.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "launch/launch_config.hpp"
#include "launch/supervisor.hpp"
#include "launch/tcp_store.hpp"
#include "launch_helpers.hpp"

using namespace std::chrono_literals;
using namespace trainer::launch;
using namespace trainer::launch::test;

namespace {

std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

LaunchConfig local(int nproc) {
  LaunchConfig c;
  c.nproc = nproc;
  return c;
}

// Runs supervise() with its output captured into two files of `dir`.
struct Captured {
  int rc = -1;
  std::vector<std::string> out, err;
  std::chrono::steady_clock::duration took{};
};

Captured run(const LaunchConfig& config, const std::vector<std::string>& argv, SupervisorOptions options,
             const TempDir& dir) {
  int out_fd = open_output(dir.file("stdout"));
  int err_fd = open_output(dir.file("stderr"));
  options.stdout_fd = out_fd;
  options.stderr_fd = err_fd;
  Captured c;
  auto start = std::chrono::steady_clock::now();
  try {
    c.rc = supervise(config, argv, options);
  } catch (...) {
    ::close(out_fd);
    ::close(err_fd);
    throw;
  }
  c.took = std::chrono::steady_clock::now() - start;
  ::close(out_fd);
  ::close(err_fd);
  c.out = read_lines(dir.file("stdout"));
  c.err = read_lines(dir.file("stderr"));
  return c;
}

bool contains_line(const std::vector<std::string>& lines, const std::string& needle) {
  for (auto& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

// Workers that record their pid ($$, kept by exec) and then sleep.
const char* kPidThenSleep = "echo $$ > \"$PID_DIR/$TRAINER_RANK.tmp\" && mv \"$PID_DIR/$TRAINER_RANK.tmp\" "
                            "\"$PID_DIR/$TRAINER_RANK\"; exec sleep 60";

std::vector<pid_t> read_pids(const TempDir& dir, int n) {
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) pids.push_back(std::atoi(read_text(dir.file(std::to_string(r))).c_str()));
  return pids;
}

// Forks a child that runs supervise() over `nproc` pid-recording workers and exits with its
// result; returns once every worker has written its pid.
pid_t fork_supervisor(const TempDir& dir, int nproc) {
  ::setenv("PID_DIR", dir.path().c_str(), 1);
  pid_t child = ::fork();
  if (child == 0) {
    SupervisorOptions o;
    o.grace_period = 2s;
    o.stdout_fd = open_output(dir.file("stdout"));
    o.stderr_fd = open_output(dir.file("stderr"));
    int rc = 100;
    try {
      rc = supervise(local(nproc), sh(kPidThenSleep), o);
    } catch (...) {
    }
    ::_exit(rc);
  }
  ::unsetenv("PID_DIR");
  REQUIRE(child > 0);
  bool started = wait_until(
      [&] {
        for (int r = 0; r < nproc; ++r)
          if (!std::filesystem::exists(dir.file(std::to_string(r)))) return false;
        return true;
      },
      10s);
  if (!started) ::kill(child, SIGKILL);
  REQUIRE(started);
  return child;
}

int wait_exit(pid_t child, std::chrono::milliseconds timeout) {
  int status = 0;
  bool done = wait_until([&] { return ::waitpid(child, &status, WNOHANG) == child; }, timeout);
  if (!done) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL("the supervisor did not exit in time");
  }
  return status;
}

}  // namespace

TEST_CASE("worker output is relayed line by line with a rank prefix", "[launch][supervisor]") {
  TempDir dir("prefix");
  auto c = run(local(3), sh("echo \"out $TRAINER_RANK\"; echo \"err $TRAINER_RANK\" >&2; "
                            "printf 'part'; sleep 0.1; printf 'ial\\n'; printf 'no newline'"),
               {}, dir);
  CHECK(c.rc == 0);
  CHECK(c.out.size() == 9);
  CHECK(c.err.size() == 3);
  for (int r = 0; r < 3; ++r) {
    std::string p = "[rank " + std::to_string(r) + "] ";
    std::vector<std::string> mine;
    for (auto& l : c.out)
      if (l.rfind(p, 0) == 0) mine.push_back(l.substr(p.size()));
    CHECK(mine == std::vector<std::string>{"out " + std::to_string(r), "partial", "no newline"});
    CHECK(contains_line(c.err, p + "err " + std::to_string(r)));
  }
}

TEST_CASE("lines of concurrent workers never interleave", "[launch][supervisor]") {
  TempDir dir("interleave");
  // Each line is written in two pieces, so a supervisor relaying raw chunks would mix them.
  auto c = run(local(4), sh("i=0; while [ $i -lt 300 ]; do printf 'r%s line %s ' $TRAINER_RANK $i; "
                            "printf '%s\\n' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"),
               {}, dir);
  CHECK(c.rc == 0);
  REQUIRE(c.out.size() == 1200);
  std::regex line(R"(\[rank (\d)\] r(\d) line (\d+) x{56})");
  std::map<int, int> next;
  for (auto& l : c.out) {
    std::smatch m;
    REQUIRE(std::regex_match(l, m, line));
    int rank = std::stoi(m[1]);
    CHECK(std::stoi(m[2]) == rank);
    CHECK(std::stoi(m[3]) == next[rank]++);  // in order within a rank
  }
}

TEST_CASE("every rank gets its identity and reaches the same store", "[launch][supervisor]") {
  TempDir dir("identity");
  std::string store;
  SupervisorOptions o;
  o.on_store_ready = [&](const std::string& host, int port) { store = host + ":" + std::to_string(port); };
  auto c = run(local(3),
               sh("echo \"$TRAINER_RANK $TRAINER_WORLD_SIZE $TRAINER_LOCAL_RANK $TRAINER_LOCAL_WORLD_SIZE "
                  "$TRAINER_STORE\""),
               o, dir);
  CHECK(c.rc == 0);
  REQUIRE_FALSE(store.empty());
  for (int r = 0; r < 3; ++r)
    CHECK(contains_line(c.out, "[rank " + std::to_string(r) + "] " + std::to_string(r) + " 3 " + std::to_string(r) +
                                   " 3 " + store));

  SECTION("workers rendezvous through the store") {
    ::setenv(kWorkerModeVar, "rendezvous", 1);
    auto r = run(local(4), {self_exe()}, {}, dir);
    ::unsetenv(kWorkerModeVar);
    INFO(read_text(dir.file("stderr")));
    CHECK(r.rc == 0);
    for (int k = 0; k < 4; ++k) CHECK(contains_line(r.out, "[rank " + std::to_string(k) + "] rank " +
                                                                std::to_string(k) + " saw 4 peers"));
  }
  SECTION("on a later node the ranks are offset and the store is node 0's") {
    LaunchConfig cfg;
    cfg.nproc = 2;
    cfg.nnodes = 2;
    cfg.node_rank = 1;
    cfg.master_addr = "127.0.0.1";
    cfg.master_port = 29999;
    bool served = false;
    SupervisorOptions later;
    later.on_store_ready = [&](const std::string&, int) { served = true; };
    auto r = run(cfg, sh("echo \"$TRAINER_RANK $TRAINER_WORLD_SIZE $TRAINER_LOCAL_RANK $TRAINER_STORE\""), later, dir);
    CHECK(r.rc == 0);
    CHECK_FALSE(served);  // only node 0 serves the store
    CHECK(contains_line(r.out, "[rank 2] 2 4 0 127.0.0.1:29999"));
    CHECK(contains_line(r.out, "[rank 3] 3 4 1 127.0.0.1:29999"));
  }
}

TEST_CASE("two nodes on one machine rendezvous through node 0's store", "[launch][supervisor]") {
  TempDir dir("two-nodes");
  int port = 0;
  {
    TcpStoreServer probe("127.0.0.1", 0);  // a free port for node 0's store
    port = probe.port();
  }
  LaunchConfig cfg;
  cfg.nproc = 2;
  cfg.nnodes = 2;
  cfg.master_addr = "127.0.0.1";
  cfg.master_port = port;
  ::setenv(kWorkerModeVar, "rendezvous", 1);
  pid_t node1 = ::fork();
  if (node1 == 0) {  // node 1, started first: its workers retry until node 0's store is up
    LaunchConfig c1 = cfg;
    c1.node_rank = 1;
    SupervisorOptions o;
    o.stdout_fd = open_output(dir.file("node1.out"));
    o.stderr_fd = open_output(dir.file("node1.err"));
    int rc = 100;
    try {
      rc = supervise(c1, {self_exe()}, o);
    } catch (...) {
    }
    ::_exit(rc);
  }
  REQUIRE(node1 > 0);
  auto c0 = run(cfg, {self_exe()}, {}, dir);
  ::unsetenv(kWorkerModeVar);
  int status = wait_exit(node1, 20s);
  INFO(read_text(dir.file("stderr")) + read_text(dir.file("node1.err")));
  CHECK(c0.rc == 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(contains_line(c0.out, "[rank 1] rank 1 saw 4 peers"));
  CHECK(contains_line(read_lines(dir.file("node1.out")), "[rank 3] rank 3 saw 4 peers"));
}

TEST_CASE("the first failing rank stops the others and sets the exit code", "[launch][supervisor]") {
  TempDir dir("failure");
  SECTION("a non-zero exit") {
    auto c = run(local(3), sh("if [ $TRAINER_RANK = 1 ]; then echo dying; sleep 0.2; exit 3; fi; exec sleep 60"), {},
                 dir);
    CHECK(c.rc == 3);
    CHECK(c.took < 10s);
    CHECK(contains_line(c.out, "[rank 1] dying"));
    REQUIRE_FALSE(c.err.empty());
    CHECK(std::regex_match(c.err.front(), std::regex(R"(trainer: rank 1 \(pid \d+\) exited with status 3; )"
                                                     R"(stopping 2 other worker\(s\))")));
  }
  SECTION("a worker killed by SIGKILL") {
    auto c = run(local(2), sh("if [ $TRAINER_RANK = 0 ]; then kill -KILL $$; fi; exec sleep 60"), {}, dir);
    CHECK(c.rc == 128 + SIGKILL);
    CHECK(c.took < 10s);
    CHECK(contains_line(c.err, "trainer: rank 0 (pid "));
    CHECK(contains_line(c.err, "was killed by signal SIGKILL"));
  }
  SECTION("a worker ignoring SIGTERM is killed after the grace period") {
    SupervisorOptions o;
    o.grace_period = 300ms;
    auto c = run(local(2), sh("if [ $TRAINER_RANK = 1 ]; then sleep 0.2; exit 2; fi; trap '' TERM; exec sleep 60"), o,
                 dir);
    CHECK(c.rc == 2);
    CHECK(c.took >= 300ms);
    CHECK(c.took < 5s);
    CHECK(contains_line(c.err, "1 worker(s) still running after the 300 ms grace period; sending SIGKILL"));
  }
  SECTION("all ranks exiting 0 is success, even at different times") {
    auto c = run(local(3), sh("sleep 0.$TRAINER_RANK; exit 0"), {}, dir);
    CHECK(c.rc == 0);
    CHECK(c.err.empty());
  }
}

TEST_CASE("output prefixing can be turned off", "[launch][supervisor]") {
  TempDir dir("raw");
  auto c = run(local(1), sh("echo plain; echo oops >&2"), [] {
    SupervisorOptions o;
    o.prefix_output = false;
    return o;
  }(), dir);
  CHECK(c.rc == 0);
  CHECK(c.out == std::vector<std::string>{"plain"});
  CHECK(c.err == std::vector<std::string>{"oops"});
}

TEST_CASE("a worker command that cannot start is an error", "[launch][supervisor]") {
  TempDir dir("exec");
  CHECK_THROWS_WITH(run(local(2), {"/nonexistent/trainer", "worker"}, {}, dir),
                    "cannot start worker /nonexistent/trainer: No such file or directory");
  CHECK_THROWS_WITH(run(local(1), {"sh", "-c", "true"}, {}, dir), Catch::Contains("absolute path"));
  LaunchConfig bad = local(1);
  bad.nnodes = 2;
  bad.node_rank = 1;
  CHECK_THROWS_AS(run(bad, sh("true"), {}, dir), LaunchError);  // several nodes need a fixed port
}

TEST_CASE("a signal to the supervisor stops every worker", "[launch][supervisor]") {
  int sig = GENERATE(SIGINT, SIGTERM);
  TempDir dir("signal");
  pid_t child = fork_supervisor(dir, 3);
  auto pids = read_pids(dir, 3);
  ::kill(child, sig);
  int status = wait_exit(child, 10s);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 128 + sig);
  for (pid_t p : pids) CHECK_FALSE(process_alive(p));
  CHECK(contains_line(read_lines(dir.file("stderr")), sig == SIGINT ? "received SIGINT" : "received SIGTERM"));
}

TEST_CASE("a killed supervisor leaves no worker behind", "[launch][supervisor]") {
  TempDir dir("pdeathsig");
  pid_t child = fork_supervisor(dir, 2);
  auto pids = read_pids(dir, 2);
  for (pid_t p : pids) REQUIRE(process_alive(p));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  CHECK(wait_until([&] { return !process_alive(pids[0]) && !process_alive(pids[1]); }, 5s));
}
