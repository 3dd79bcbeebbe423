#include "launch_helpers.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "launch/launch_config.hpp"
#include "launch/tcp_store.hpp"

namespace trainer::launch::test {

TempDir::TempDir(const std::string& name) {
  static std::atomic<int> counter{0};
  dir_ = std::filesystem::temp_directory_path() /
         ("trainer-launch-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool process_alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), {});
  auto close = content.rfind(')');  // the command name may contain spaces and parentheses
  return close == std::string::npos || close + 2 >= content.size() || content[close + 2] != 'Z';
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

int open_output(const std::string& path) { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); }

namespace {

// Worker mode "rendezvous": what a real worker does first. Publish a key, count arrivals,
// wait for every rank's key, read them all back, leave in order. Exit 0 and one line on
// success.
int rendezvous_worker() {
  try {
    auto id = worker_identity_from_env(environment_map());
    if (!id) throw std::runtime_error("TRAINER_RANK is not set");
    TcpStoreClient store(id->store_addr, id->store_port, std::chrono::seconds(10));
    std::string mine = "hello from " + std::to_string(id->rank);
    store.set("rank/" + std::to_string(id->rank), std::vector<std::uint8_t>(mine.begin(), mine.end()));
    store.add("arrived", 1);
    std::vector<std::string> keys;
    for (int r = 0; r < id->world_size; ++r) keys.push_back("rank/" + std::to_string(r));
    store.wait(keys, std::chrono::seconds(10));
    int seen = 0;
    for (int r = 0; r < id->world_size; ++r) {
      auto v = store.get(keys[static_cast<std::size_t>(r)], std::chrono::seconds(1));
      if (std::string(v.begin(), v.end()) == "hello from " + std::to_string(r)) ++seen;
    }
    // Leaving: node 0's store dies with node 0's supervisor, so node 0's ranks go last,
    // once every rank has made its final request (the add below, or the set after it).
    if (store.add("left", 1) == id->world_size) store.set("all-left", {});
    if (id->rank < id->local_world_size) store.wait({"all-left"}, std::chrono::seconds(10));
    std::printf("rank %d saw %d peers\n", id->rank, seen);
    return seen == id->world_size ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "worker failed: %s\n", e.what());
    return 1;
  }
}

// Runs before Catch's main: in worker mode the test binary never reaches the test runner.
[[maybe_unused]] const bool worker_mode_checked = [] {
  const char* mode = std::getenv(kWorkerModeVar);
  if (mode && std::string(mode) == "rendezvous") {
    int rc = rendezvous_worker();
    std::fflush(stdout);
    std::_Exit(rc);
  }
  return true;
}();

}  // namespace

}  // namespace trainer::launch::test
