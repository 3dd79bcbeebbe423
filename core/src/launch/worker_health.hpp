// The worker's side of hang and death detection: a thread that heartbeats through the
// job's store (key "heartbeat/<rank>", a counter the supervisor watches), and the dump of
// this process's flight record — when a collective of this rank fails (abort_process), or
// when the store's "flight/request" key appears because another rank failed. A record goes
// to the store ("flight/<rank>", for the supervisor's diagnosis) and to
// <flight_dir>/rank-<r>.json (for people).
#pragma once
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "launch/launch_config.hpp"

namespace trainer::launch {

inline const char* const kFlightRequestKey = "flight/request";
std::string heartbeat_key(int rank);
std::string flight_key(int rank);

class WorkerHealth {
 public:
  // Starts heartbeating at once; `interval` <= 0 turns the heartbeat off (dumps still work).
  WorkerHealth(const WorkerIdentity& id, std::chrono::milliseconds interval, std::filesystem::path flight_dir);
  ~WorkerHealth();  // stops the thread within ~100 ms and removes the dump hook
  WorkerHealth(const WorkerHealth&) = delete;
  WorkerHealth& operator=(const WorkerHealth&) = delete;

 private:
  void loop();
  void dump(const std::string& reason);

  WorkerIdentity id_;
  std::chrono::milliseconds interval_;
  std::filesystem::path flight_dir_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> dumped_{false};  // one record per process: the first reason is the true one
  std::thread thread_;
};

}  // namespace trainer::launch
