#include "comm/process_abort.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "comm/flight_recorder.hpp"

namespace trainer::comm {

namespace {

std::mutex& hook_mutex() {
  static auto* m = new std::mutex;  // leaked: used until _Exit
  return *m;
}

DumpHook& hook() {
  static auto* h = new DumpHook;
  return *h;
}

}  // namespace

void set_dump_hook(DumpHook h) {
  std::lock_guard lock(hook_mutex());
  hook() = std::move(h);
}

bool dump_flight_record(const std::string& reason) {
  std::lock_guard lock(hook_mutex());
  if (!hook()) return false;
  try {
    hook()(reason);
  } catch (const std::exception& e) {
    fmt::print(stderr, "trainer: could not dump the flight record: {}\n", e.what());
  }
  return true;
}

void abort_process(const std::string& message) {
  // Only the first caller speaks and dumps; a second failure (the watchdog and a failed
  // wait at the same time) just waits for it to exit.
  static std::once_flag once;
  std::call_once(once, [&] {
    fmt::print(stderr, "trainer: rank {}: {}; dumping the flight record and exiting with status {}\n",
               FlightRecorder::process().rank(), message, kCollectiveFailureExitCode);
    std::fflush(stdout);
    std::fflush(stderr);
    dump_flight_record(message);
    std::fflush(stderr);
    std::_Exit(kCollectiveFailureExitCode);
  });
  std::_Exit(kCollectiveFailureExitCode);
}

}  // namespace trainer::comm
