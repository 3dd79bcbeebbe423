#include "sweep/runner.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>

extern char** environ;

namespace trainer::sweep {
namespace {

using Clock = std::chrono::steady_clock;

struct Running {
  std::size_t index;
  pid_t pid;
  Clock::time_point start;
};

// posix_spawn rather than fork: nothing of this process (threads, locks) is duplicated.
void start(const Job& job, JobResult& result, pid_t& pid) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  const std::string log = job.log.string();
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const std::string program = job.program.string();
  std::vector<std::string> storage;
  storage.push_back(program);
  storage.insert(storage.end(), job.args.begin(), job.args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    result.start_error = fmt::format("cannot run {}: {}", program, std::strerror(rc));
    result.exit_code = 127;
    std::ofstream(job.log) << result.start_error << "\n";
    return;
  }
  result.started = true;
}

}  // namespace

std::string JobResult::describe() const {
  if (!started) return fmt::format("not started: {}", start_error);
  if (signal) return fmt::format("signal {}", signal);
  return fmt::format("exit {}", exit_code);
}

std::vector<JobResult> run_jobs(const std::vector<Job>& jobs, int concurrency,
                                const std::function<void(const JobEvent&)>& on_event) {
  std::vector<JobResult> results(jobs.size());
  const std::size_t limit = static_cast<std::size_t>(std::max(1, concurrency));
  std::size_t next = 0;
  std::deque<Running> running;
  auto notify = [&](JobEvent::Kind kind, std::size_t i) {
    if (on_event) on_event(JobEvent{kind, i, kind == JobEvent::Kind::finished ? &results[i] : nullptr});
  };
  while (next < jobs.size() || !running.empty()) {
    while (next < jobs.size() && running.size() < limit) {
      const std::size_t i = next++;
      pid_t pid = 0;
      const auto t0 = Clock::now();
      notify(JobEvent::Kind::started, i);
      start(jobs[i], results[i], pid);
      if (results[i].started) {
        running.push_back({i, pid, t0});
      } else {
        notify(JobEvent::Kind::finished, i);
      }
    }
    // Poll our own children: waitpid(-1) could reap a process that is not ours, and a
    // 10 ms poll costs nothing next to a training run.
    bool reaped = false;
    for (auto it = running.begin(); it != running.end();) {
      int status = 0;
      const pid_t r = ::waitpid(it->pid, &status, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) {
        ++it;
        continue;
      }
      JobResult& res = results[it->index];
      res.seconds = std::chrono::duration<double>(Clock::now() - it->start).count();
      if (r < 0) {
        res.exit_code = -1;
        res.start_error = std::strerror(errno);
      } else if (WIFSIGNALED(status)) {
        res.signal = WTERMSIG(status);
      } else {
        res.exit_code = WEXITSTATUS(status);
      }
      const std::size_t index = it->index;
      it = running.erase(it);
      notify(JobEvent::Kind::finished, index);
      reaped = true;
    }
    if (!reaped && !running.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return results;
}

std::vector<std::string> tail_lines(const std::filesystem::path& file, std::size_t count) {
  std::ifstream in(file);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    // Progress bars redraw with \r; only the last state of a line is worth showing.
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (const auto cr = line.rfind('\r'); cr != std::string::npos) line.erase(0, cr + 1);
    lines.push_back(line);
    if (lines.size() > count) lines.pop_front();
  }
  return {lines.begin(), lines.end()};
}

}  // namespace trainer::sweep
