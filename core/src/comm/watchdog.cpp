#include "comm/watchdog.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "comm/process_abort.hpp"

namespace trainer::comm {

std::string describe(const FlightEntry& e) {
  std::string s = fmt::format("group '{}' {} #{}", e.group, e.op, e.seq);
  if (e.op == "send") s += fmt::format(" to rank {}", e.peer);
  if (e.op == "recv") s += fmt::format(" from rank {}", e.peer);
  if (e.op == "broadcast") s += fmt::format(" from rank {}", e.peer);
  s += fmt::format(" ({} bytes, step {})", e.bytes, e.step);
  return s;
}

Watchdog::Watchdog(FlightRecorder& recorder, std::chrono::milliseconds timeout, TimeoutHandler on_timeout)
    : recorder_(recorder), timeout_(timeout), on_timeout_(std::move(on_timeout)) {
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::loop() {
  // Checks 20 times per timeout, at most every 100 ms: a hang is seen at most 5% late.
  const auto period = std::clamp(timeout_ / 20, std::chrono::milliseconds(5), std::chrono::milliseconds(100));
  const double limit_s = std::chrono::duration<double>(timeout_).count();
  std::unique_lock lock(mutex_);
  while (!cv_.wait_for(lock, period, [&] { return stopping_; })) {
    recorder_.poll();
    const auto late = recorder_.oldest_issued();
    if (!late) continue;
    const double age = recorder_.now_s() - late->issued_s;
    if (age < limit_s) continue;
    lock.unlock();
    on_timeout_(*late, age);
    return;  // fires once
  }
}

}  // namespace trainer::comm

namespace trainer::comm {

std::unique_ptr<Watchdog> process_watchdog(std::chrono::milliseconds timeout) {
  return std::make_unique<Watchdog>(FlightRecorder::process(), timeout, [timeout](const FlightEntry& e, double age) {
    abort_process(fmt::format("collective timeout: {} not complete after {:.1f} s (watchdog.collective_timeout_s "
                              "{:.1f})",
                              describe(e), age, std::chrono::duration<double>(timeout).count()));
  });
}

}  // namespace trainer::comm
