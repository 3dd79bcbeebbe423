// Helpers shared by the launch tests: temporary folders, process liveness, waiting, and the
// test binary re-executed as a real store-using worker (see launch_helpers.cpp).
#pragma once
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace trainer::launch::test {

// Environment variable that turns this test binary into a worker (read before main()).
inline constexpr const char* kWorkerModeVar = "TRAINER_LAUNCH_TEST_WORKER";

class TempDir {
 public:
  explicit TempDir(const std::string& name);
  ~TempDir();
  const std::filesystem::path& path() const { return dir_; }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

std::string self_exe();
std::string read_text(const std::string& path);
std::vector<std::string> read_lines(const std::string& path);
// Alive and not a zombie: a killed orphan may linger as a zombie under a non-reaping init.
bool process_alive(pid_t pid);
// Polls `done` every 10 ms until it holds or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);
// An fd for a new file at `path` (the supervisor's output sink in tests); caller closes.
int open_output(const std::string& path);

}  // namespace trainer::launch::test
