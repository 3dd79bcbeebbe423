// Running the points as child processes, at most N at once, each one's stdout and stderr
// captured to its own log file. Children are waited for by pid only, so the runner never
// reaps a process someone else in this program started.
#pragma once
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace trainer::sweep {

struct Job {
  std::string name;                // shown in progress lines
  std::filesystem::path program;   // run as is (no PATH search)
  std::vector<std::string> args;   // after argv[0]
  std::filesystem::path log;       // stdout+stderr, truncated; its folder must exist
};

struct JobResult {
  bool started = false;
  std::string start_error;  // why it could not be started
  int exit_code = -1;       // when it exited
  int signal = 0;           // when a signal ended it
  double seconds = 0;

  bool ok() const { return started && signal == 0 && exit_code == 0; }
  std::string describe() const;  // "exit 0", "exit 2", "signal 9", "not started: ..."
};

struct JobEvent {
  enum class Kind { started, finished };
  Kind kind;
  std::size_t index;  // into the jobs
  const JobResult* result;  // set when finished
};

// Runs every job, in order, keeping up to `concurrency` running; returns one result per job.
// `on_event` (may be empty) is called from this thread as jobs start and finish.
std::vector<JobResult> run_jobs(const std::vector<Job>& jobs, int concurrency,
                                const std::function<void(const JobEvent&)>& on_event);

// The last `count` lines of a text file (fewer if it is shorter; none if it is absent).
std::vector<std::string> tail_lines(const std::filesystem::path& file, std::size_t count);

}  // namespace trainer::sweep
