// The supervisor's event loop: one thread polls the signal relay and every worker's output
// pipes; after each wake-up it reaps exited workers and applies the stop policy.
#include "launch/supervisor.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "comm/process_abort.hpp"
#include "launch/hang_diagnosis.hpp"
#include "launch/line_sink.hpp"
#include "launch/net.hpp"
#include "launch/signal_relay.hpp"
#include "launch/tcp_store.hpp"
#include "launch/worker_health.hpp"
#include "launch/worker_spawn.hpp"

namespace trainer::launch {

namespace {

std::string signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    default: return fmt::format("signal {}", sig);
  }
}

// One worker output stream (stdout or stderr) and its line reassembly.
struct Stream {
  UniqueFd fd;
  std::optional<LineSink> sink;

  // Reads what is available now, at most `max_reads` chunks (one in the poll loop, for a
  // fair share; a bounded number when draining, since a worker's leftover child could write
  // forever). On end of file or error, flushes a last partial line and closes.
  void pump(int max_reads) {
    char buf[64 * 1024];
    while (fd && max_reads > 0) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n > 0) {
        sink->feed(buf, static_cast<std::size_t>(n));
        --max_reads;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        close();
      }
    }
  }
  void close() {
    if (sink) sink->finish();
    fd.reset();
  }
};

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  bool running = true;
  Stream out, err;
  std::int64_t beats = 0;         // the last heartbeat count seen
  Clock::time_point last_beat{};  // when it changed (at first: the start)
};

// The state letter of /proc/<pid>/stat: R, S, D, T (stopped), t, Z (exited, not reaped)...
char process_state(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() ? text[paren + 2] : '?';
}

bool collective_failure(int status) {
  return WIFEXITED(status) && WEXITSTATUS(status) == comm::kCollectiveFailureExitCode;
}

// After a collective failure: asks every rank for its flight record (the failed one has
// already), waits for those of local workers that can still write one, and diagnoses.
std::string collect_and_diagnose(Store& store, const std::vector<Worker>& workers, int world,
                                 std::chrono::milliseconds wait) {
  store.set(kFlightRequestKey, {});
  const auto deadline = Clock::now() + wait;
  for (;;) {
    bool pending = false;
    for (const auto& w : workers) {
      if (!w.running || store.check({flight_key(w.rank)})) continue;
      const char state = process_state(w.pid);
      pending = pending || (state != 'Z' && state != 'T' && state != 't' && state != '?');
    }
    if (!pending || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::map<int, comm::FlightRecord> records;
  for (int r = 0; r < world; ++r) {
    if (!store.check({flight_key(r)})) continue;
    const auto bytes = store.get(flight_key(r), std::chrono::milliseconds(1000));
    try {
      records.emplace(r, comm::decode_flight_record(std::string(bytes.begin(), bytes.end())));
    } catch (const std::exception&) {
      // unreadable: diagnosed as a rank without a record
    }
  }
  return diagnose_collectives(records, world);
}

// Owns the started workers. If supervise() leaves by an exception, none may survive it.
struct WorkerSet {
  std::vector<Worker> workers;
  ~WorkerSet() {
    for (auto& w : workers) {
      if (!w.running) continue;
      ::kill(-w.pid, SIGKILL);
      while (::waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  int running() const {
    int n = 0;
    for (auto& w : workers) n += w.running ? 1 : 0;
    return n;
  }
  void signal_all(int sig) {
    for (auto& w : workers)
      if (w.running) ::kill(-w.pid, sig);
  }
};

constexpr int kDrainReads = 256;  // 16 MiB: far more than a pipe holds

void say(int fd, const std::string& line) {
  std::string text = "trainer: ";
  text += line;
  text += '\n';
  write_fully(fd, text.data(), text.size());
}

void validate(const LaunchConfig& c, const std::vector<std::string>& argv) {
  if (c.nproc < 1 || c.nnodes < 1 || c.node_rank < 0 || c.node_rank >= c.nnodes)
    throw LaunchError(fmt::format("invalid launch: nproc {}, nnodes {}, node rank {}", c.nproc, c.nnodes, c.node_rank));
  if (c.nnodes > 1 && c.master_port == 0)
    throw LaunchError("a launch over several nodes needs a fixed store port (--master host:port)");
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/')
    throw LaunchError("the worker command must start with an absolute path");
}

std::vector<std::string> base_environment() {
  std::vector<std::string> env;
  for (auto& [name, value] : environment_map()) {
    if (name == "TRAINER_RANK" || name == "TRAINER_WORLD_SIZE" || name == "TRAINER_LOCAL_RANK" ||
        name == "TRAINER_LOCAL_WORLD_SIZE" || name == "TRAINER_STORE")
      continue;  // set per worker below; a stale identity from our own environment must not leak
    std::string entry = name;
    entry += '=';
    entry += value;
    env.push_back(std::move(entry));
  }
  return env;
}

}  // namespace

int supervise(const LaunchConfig& config, const std::vector<std::string>& worker_argv,
              const SupervisorOptions& options) {
  validate(config, worker_argv);
  // The relay is installed before any worker exists, so no SIGCHLD or Ctrl-C is missed.
  SignalRelay relay;

  std::optional<TcpStoreServer> server;
  int store_port = config.master_port;
  if (config.node_rank == 0) {
    // Several nodes: listen on every interface. Binding master_addr itself breaks on the
    // common /etc/hosts that maps the node's own name to 127.0.1.1: other nodes would then
    // retry against a store that only listens on loopback. One node: stay on master_addr.
    server.emplace(config.nnodes > 1 ? std::string() : config.master_addr, config.master_port);
    store_port = server->port();
    if (options.on_store_ready) options.on_store_ready(config.master_addr, store_port);
  }

  WorkerSet set;
  const auto base_env = base_environment();
  for (int local = 0; local < config.nproc; ++local) {
    WorkerIdentity id{config.node_rank * config.nproc + local, config.nnodes * config.nproc, local, config.nproc,
                      config.master_addr, store_port};
    SpawnSpec spec;
    spec.argv = worker_argv;
    spec.env = base_env;
    for (auto& v : worker_environment(id)) spec.env.push_back(v);
    spec.capture = options.prefix_output;
    spec.stdout_fd = options.stdout_fd;
    spec.stderr_fd = options.stderr_fd;
    SpawnedWorker spawned = spawn_worker(spec, relay);
    Worker& w = set.workers.emplace_back();
    w.rank = id.rank;
    w.pid = spawned.pid;
    w.last_beat = Clock::now();
    std::string prefix = fmt::format("[rank {}] ", id.rank);
    w.out.fd = std::move(spawned.out);
    w.err.fd = std::move(spawned.err);
    if (w.out.fd) w.out.sink.emplace(prefix, options.stdout_fd);
    if (w.err.fd) w.err.sink.emplace(prefix, options.stderr_fd);
  }

  std::optional<int> result;  // the first failure's exit code
  bool stopping = false;
  bool killed = false;
  Clock::time_point kill_at;
  auto stop = [&](int code, const std::string& why) {
    if (stopping) return;
    stopping = true;
    result = code;
    kill_at = Clock::now() + options.grace_period;
    int others = set.running();
    say(options.stderr_fd, others ? fmt::format("{}; stopping {} other worker(s)", why, others) : why);
    set.signal_all(SIGTERM);
  };

  // The supervisor's own connection to the store: heartbeats and flight records.
  std::optional<TcpStoreClient> monitor;
  auto store = [&]() -> TcpStoreClient& {
    if (!monitor) monitor.emplace(config.master_addr, store_port, std::chrono::seconds(10));
    return *monitor;
  };
  const int world = config.nproc * config.nnodes;
  auto heartbeat_timeout = options.heartbeat_timeout;
  Clock::time_point next_heartbeat_check{};
  auto check_heartbeats = [&] {
    const auto now = Clock::now();
    for (auto& w : set.workers) {
      if (!w.running || stopping) continue;
      const std::int64_t beats = store().add(heartbeat_key(w.rank), 0);
      if (beats != w.beats) {
        w.beats = beats;
        w.last_beat = now;
        continue;
      }
      const double silent = std::chrono::duration<double>(now - w.last_beat).count();
      if (silent * 1000.0 < static_cast<double>(heartbeat_timeout.count())) continue;
      const char state = process_state(w.pid);
      const std::string how = state == 'T' || state == 't' ? "; the process is stopped (SIGSTOP or a debugger)"
                              : w.beats == 0            ? "; it never sent one"
                                                        : "";
      ::kill(-w.pid, SIGKILL);  // a stopped process would not act on SIGTERM
      while (::waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      w.running = false;
      w.out.pump(kDrainReads);
      w.err.pump(kDrainReads);
      if (options.on_worker_failure) options.on_worker_failure(w.rank, kHeartbeatLostExitCode);
      stop(kHeartbeatLostExitCode,
           fmt::format("rank {} (pid {}) stopped heartbeating: none for {:.1f} s (heartbeat timeout {:.1f} s){}",
                       w.rank, w.pid, silent, static_cast<double>(heartbeat_timeout.count()) / 1000.0, how));
      return;
    }
  };

  // Reaps `w` if it has exited (its last output printed first); its wait status, if so.
  auto reap = [](Worker& w) -> std::optional<int> {
    if (!w.running) return std::nullopt;
    int status = 0;
    if (::waitpid(w.pid, &status, WNOHANG) != w.pid) return std::nullopt;
    w.running = false;
    w.out.pump(kDrainReads);
    w.err.pump(kDrainReads);
    return status;
  };
  // The first failure stops the job and is reported to the policy; later ones are not.
  auto report = [&](const Worker& w, int status) {
    if (stopping) return;
    const int failed_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    if (options.on_worker_failure) options.on_worker_failure(w.rank, failed_code);
    if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      stop(128 + sig, fmt::format("rank {} (pid {}) was killed by signal {}{}", w.rank, w.pid, signal_name(sig),
                                  WCOREDUMP(status) ? " (core dumped)" : ""));
    } else if (collective_failure(status)) {
      stop(failed_code, fmt::format("rank {} (pid {}) exited with status {} (a collective timed out or failed)",
                                    w.rank, w.pid, failed_code));
    } else {
      stop(failed_code, fmt::format("rank {} (pid {}) exited with status {}", w.rank, w.pid, failed_code));
    }
  };

  std::vector<pollfd> fds;
  std::vector<Stream*> streams;
  while (set.running() > 0) {
    fds.assign(1, pollfd{relay.fd(), POLLIN, 0});
    streams.clear();
    for (auto& w : set.workers)
      for (Stream* s : {&w.out, &w.err})
        if (s->fd) {
          fds.push_back({s->fd.get(), POLLIN, 0});
          streams.push_back(s);
        }
    // A bounded wait even when idle: a cheap safety net should a wake-up ever be lost.
    int timeout_ms = 1000;
    if (heartbeat_timeout.count() > 0) {
      timeout_ms = static_cast<int>(std::clamp<long long>(heartbeat_timeout.count() / 10, 10, 1000));
    }
    if (stopping && !killed) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - Clock::now()).count() + 1;
      timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, timeout_ms));
    }
    ::poll(fds.data(), fds.size(), timeout_ms);

    for (std::size_t i = 1; i < fds.size(); ++i)
      if (fds[i].revents) streams[i - 1]->pump(1);

    for (int sig : relay.drain()) {
      if (sig != SIGINT && sig != SIGTERM) continue;  // SIGCHLD: reaping below covers it
      if (!stopping) {
        stop(128 + sig, fmt::format("received {}", signal_name(sig)));
      } else if (!killed) {
        // A second request while workers shut down: do not make the user wait the grace.
        say(options.stderr_fd, fmt::format("received {} again; killing the workers", signal_name(sig)));
        set.signal_all(SIGKILL);
        killed = true;
      }
    }

    std::vector<std::pair<Worker*, int>> exited;  // reaped in this wake-up, with their status
    for (auto& w : set.workers) {
      if (auto status = reap(w)) exited.emplace_back(&w, *status);
    }
    // A rank that exits 4 usually does so because a peer died or hung: a peer's own failure
    // seen in the same wake-up is the cause, so it is reported first.
    std::stable_partition(exited.begin(), exited.end(), [](const auto& e) { return !collective_failure(e.second); });
    for (auto& [w, status] : exited) {
      if ((WIFEXITED(status) && WEXITSTATUS(status) == 0) || stopping) continue;  // stopping: we asked it to
      if (!collective_failure(status)) {
        report(*w, status);
        continue;
      }
      std::string diagnosis;
      try {
        diagnosis = collect_and_diagnose(store(), set.workers, world, options.flight_record_wait);
      } catch (const std::exception& e) {
        diagnosis = fmt::format("diagnosis: none (the flight records could not be read: {})", e.what());
      }
      // The records took a moment: a peer that died meanwhile by itself is the cause.
      for (auto& other : set.workers) {
        if (auto st = reap(other); st && !(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) && !collective_failure(*st)) {
          report(other, *st);
          break;
        }
      }
      report(*w, status);  // no-op once stopping
      say(options.stderr_fd, diagnosis);
    }
    if (heartbeat_timeout.count() > 0 && !stopping && Clock::now() >= next_heartbeat_check) {
      // At most every tenth of the timeout, however often worker output wakes the loop.
      next_heartbeat_check = Clock::now() + std::clamp(heartbeat_timeout / 10, std::chrono::milliseconds(10),
                                                       std::chrono::milliseconds(1000));
      try {
        check_heartbeats();
      } catch (const StoreError& e) {
        say(options.stderr_fd, fmt::format("heartbeats are off: cannot read the store: {}", e.what()));
        heartbeat_timeout = std::chrono::milliseconds(0);
      }
    }

    if (stopping && !killed && Clock::now() >= kill_at && set.running() > 0) {
      say(options.stderr_fd, fmt::format("{} worker(s) still running after the {} ms grace period; sending SIGKILL",
                                         set.running(), options.grace_period.count()));
      set.signal_all(SIGKILL);
      killed = true;
    }
  }

  // Every worker has exited; take what is left in the pipes without waiting for end of
  // file, which a worker's leftover child could hold back indefinitely.
  for (auto& w : set.workers) {
    w.out.pump(kDrainReads);
    w.err.pump(kDrainReads);
    w.out.close();
    w.err.close();
  }
  return result.value_or(0);
}

}  // namespace trainer::launch
