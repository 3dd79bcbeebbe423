// Watchdog: a thread that watches a FlightRecorder and calls `on_timeout` once when an
// operation has been issued for longer than the timeout. It measures from the issue, not
// from the wait: a collective that a peer never enters is late however the caller waits.
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "comm/flight_recorder.hpp"

namespace trainer::comm {

class Watchdog {
 public:
  using TimeoutHandler = std::function<void(const FlightEntry& late, double age_s)>;
  Watchdog(FlightRecorder& recorder, std::chrono::milliseconds timeout, TimeoutHandler on_timeout);
  ~Watchdog();  // stops the thread (without firing)
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  void loop();

  FlightRecorder& recorder_;
  const std::chrono::milliseconds timeout_;
  TimeoutHandler on_timeout_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// "group 'dp' all_reduce #42 (4096 bytes, step 20)": how messages and diagnoses name an op.
std::string describe(const FlightEntry& e);

}  // namespace trainer::comm

namespace trainer::comm {
// A watchdog over FlightRecorder::process() that ends the process through abort_process.
std::unique_ptr<Watchdog> process_watchdog(std::chrono::milliseconds timeout);
}  // namespace trainer::comm
