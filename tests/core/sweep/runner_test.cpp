// Child processes: captured logs, exit codes and signals, the concurrency limit, events.
#include <catch2/catch.hpp>

#include <chrono>

#include "core/sweep/sweep_helpers.hpp"
#include "sweep/runner.hpp"

using namespace sweep_test;
using namespace trainer::sweep;

namespace {
Job shell(const TempDir& dir, const std::string& name, const std::string& script) {
  return Job{name, "/bin/sh", {"-c", script}, dir.path() / (name + ".log")};
}
}  // namespace

TEST_CASE("each job's stdout and stderr go to its log; exit codes and signals are kept", "[sweep]") {
  TempDir dir;
  const std::vector<Job> jobs{shell(dir, "ok", "echo out; echo err >&2"), shell(dir, "three", "exit 3"),
                              shell(dir, "killed", "kill -9 $$"),
                              Job{"absent", dir.path() / "no-such-program", {}, dir.path() / "absent.log"}};
  const auto results = run_jobs(jobs, 2, {});
  REQUIRE(results.size() == 4);
  CHECK(results[0].ok());
  CHECK(read(dir.path() / "ok.log") == "out\nerr\n");
  CHECK(results[1].exit_code == 3);
  CHECK(results[1].describe() == "exit 3");
  CHECK(results[2].signal == 9);
  CHECK_FALSE(results[3].started);
  CHECK(results[3].describe().starts_with("not started: cannot run"));
  CHECK(read(dir.path() / "absent.log").find("cannot run") != std::string::npos);
}

TEST_CASE("no more than `concurrency` jobs run at once, and all of them run", "[sweep]") {
  TempDir dir;
  // Each job records the jobs running alongside it through marker files.
  std::vector<Job> jobs;
  for (int i = 0; i < 5; ++i) {
    jobs.push_back(shell(dir, fmt::format("j{}", i),
                         fmt::format("cd '{}' && touch run.{} && sleep 0.2 && ls run.* | wc -l > seen.{} && rm run.{}",
                                     dir.path().string(), i, i, i)));
  }
  int running = 0;
  int peak = 0;
  std::vector<std::size_t> started;
  const auto t0 = std::chrono::steady_clock::now();
  const auto results = run_jobs(jobs, 2, [&](const JobEvent& e) {
    if (e.kind == JobEvent::Kind::started) {
      started.push_back(e.index);
      peak = std::max(peak, ++running);
    } else {
      --running;
      CHECK(e.result->ok());
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(peak == 2);
  CHECK(started == std::vector<std::size_t>{0, 1, 2, 3, 4});
  for (int i = 0; i < 5; ++i) {
    CHECK(results[static_cast<std::size_t>(i)].ok());
    CHECK(std::stoi(read(dir.path() / fmt::format("seen.{}", i))) <= 2);
  }
  CHECK(seconds >= 0.6);  // three waves of 0.2 s
  CHECK(results[0].seconds >= 0.2);
}

TEST_CASE("tail_lines keeps the end of a log", "[sweep]") {
  TempDir dir;
  const auto f = dir.write("log", "a\nb\r\nbar 1\rbar 2\nc\n");
  CHECK(tail_lines(f, 3) == std::vector<std::string>{"b", "bar 2", "c"});
  CHECK(tail_lines(f, 10).size() == 4);
  CHECK(tail_lines(dir.path() / "absent", 3).empty());
}
