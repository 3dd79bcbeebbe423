#include "launch/worker_spawn.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "launch/launch_config.hpp"
#include "launch/net.hpp"

namespace trainer::launch {

namespace {

// A pipe whose ends are close-on-exec and not 0..2, so that dup2 onto 1 and 2 in the child
// can never clobber the other end.
void make_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw LaunchError(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  for (int& fd : fds) {
    if (fd < 3) {
      int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
      ::close(fd);
      fd = high;
    }
  }
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
}

// Runs in the forked child: async-signal-safe calls only, since other threads of the
// parent (the store server) may have held locks at the moment of fork.
[[noreturn]] void exec_child(char* const* argv, char* const* envp, int out_fd, int err_fd, int error_pipe,
                             pid_t parent, const SignalRelay& relay) {
  // Own process group: a terminal's Ctrl-C reaches only the supervisor, which then stops
  // workers in order, and killing the group also reaches anything the worker started.
  ::setpgid(0, 0);
  // Die with the supervisor; if it died before this line, the check below catches it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  relay.restore_in_child();
  // Copy above 2 first: out_fd or err_fd may itself be 1 or 2.
  int out_copy = ::fcntl(out_fd, F_DUPFD, 3);
  int err_copy = ::fcntl(err_fd, F_DUPFD, 3);
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (out_copy < 0 || err_copy < 0 || null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out_copy, 1) < 0 ||
      ::dup2(err_copy, 2) < 0) {
    int e = errno;
    (void)!::write(error_pipe, &e, sizeof e);
    ::_exit(127);
  }
  ::close(out_copy);
  ::close(err_copy);
  ::close(null_fd);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(argv[0], argv, envp);
  int e = errno;
  (void)!::write(error_pipe, &e, sizeof e);
  ::_exit(127);
}

}  // namespace

SpawnedWorker spawn_worker(const SpawnSpec& spec, const SignalRelay& relay) {
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/')
    throw LaunchError("the worker command must start with an absolute path");
  // Everything the child needs is built before fork: the child may not allocate.
  std::vector<char*> argv;
  for (auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  SpawnedWorker w;
  UniqueFd out_write, err_write, error_read, error_write;
  if (spec.capture) {
    make_pipe(w.out, out_write);
    make_pipe(w.err, err_write);
  }
  make_pipe(error_read, error_write);
  int child_out = spec.capture ? out_write.get() : spec.stdout_fd;
  int child_err = spec.capture ? err_write.get() : spec.stderr_fd;

  // Signals stay blocked across fork, so that none runs the relay's handler in the child
  // before it has put the default dispositions back.
  sigset_t all, previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) exec_child(argv.data(), envp.data(), child_out, child_err, error_write.get(), parent, relay);
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) throw LaunchError(fmt::format("cannot start a worker: fork failed: {}", std::strerror(fork_errno)));

  error_write.reset();
  out_write.reset();
  err_write.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    throw LaunchError(fmt::format("cannot start worker {}: {}", spec.argv[0], std::strerror(child_errno)));
  }
  w.pid = pid;
  if (w.out) set_nonblocking(w.out.get());
  if (w.err) set_nonblocking(w.err.get());
  return w;
}

}  // namespace trainer::launch
