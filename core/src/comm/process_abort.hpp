// What a rank does when one of its collectives fails or hangs: say so, dump its flight
// record (through the hook the worker installed: the store and <output.dir>/flight/), and
// leave at once with a distinct status. _Exit, not exit: a hung communicator cannot be
// destroyed in order, and the peers' operations fail as soon as this process's sockets close.
#pragma once
#include <functional>
#include <string>

namespace trainer::comm {

// The status of a rank whose collective timed out or failed.
inline constexpr int kCollectiveFailureExitCode = 4;

// Installed by the worker: writes this process's flight record, with `reason`.
using DumpHook = std::function<void(const std::string& reason)>;
void set_dump_hook(DumpHook hook);
// Runs the hook (if any) with `reason`; returns whether one ran. Safe to call from any thread,
// and more than once (later calls while a dump runs wait for it).
bool dump_flight_record(const std::string& reason);

// Prints "trainer: rank R: <message>" to stderr, dumps, and _Exit(kCollectiveFailureExitCode).
[[noreturn]] void abort_process(const std::string& message);

}  // namespace trainer::comm
