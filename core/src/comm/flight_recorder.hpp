// FlightRecorder: a ring of this process's last collective operations (group, op, sequence
// number in the group, bytes, step, issue/end times, state). When a collective hangs or
// fails, the ring is what the rank dumps, and what the supervisor's diagnosis reads: the
// records of all ranks together show which rank never entered which collective.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace trainer::comm {

struct FlightEntry {
  enum class State { issued, completed, failed, dropped };  // dropped: handle released unwaited
  std::uint64_t id = 0;    // position in the whole history of this recorder
  std::string group;       // "dp"
  std::string op;          // "all_reduce", "send", ...
  std::uint64_t seq = 0;   // collectives: their number in the group (1, 2, ...), the same on
                           // every member; send/recv: per peer and direction
  int peer = -1;           // send/recv only: the group rank at the other end
  std::uint64_t bytes = 0;
  std::int64_t step = 0;   // the training step (1-based, as logged) it was issued in; 0: setup
  double issued_s = 0;     // seconds since the recorder was made
  double ended_s = -1;     // -1 while issued
  State state = State::issued;
  std::string error;       // failed only
};

const char* state_name(FlightEntry::State s);

// What a rank dumps: its entries, oldest first, and why it dumped.
struct FlightRecord {
  int rank = -1;
  std::int64_t step = 0;  // the step the rank was in when it dumped
  double now_s = 0;       // the recorder's clock at the dump (ages = now_s - issued_s)
  std::string reason;
  std::vector<FlightEntry> entries;
};

class FlightRecorder {
 public:
  explicit FlightRecorder(std::size_t capacity = 1024);

  void set_rank(int rank) { rank_ = rank; }
  int rank() const { return rank_; }
  // The step subsequent operations belong to (the trainer sets it as each step starts).
  void set_step(std::int64_t step) { step_ = step; }
  std::int64_t step() const { return step_; }

  // Records an operation as issued and returns its id for end().
  std::uint64_t begin(const std::string& group, const std::string& op, std::uint64_t seq, int peer,
                      std::uint64_t bytes);
  // Ends an issued operation (a no-op once it fell out of the ring).
  void end(std::uint64_t id, FlightEntry::State state, const std::string& error = {});
  // Ends it (as completed) once `done` returns true: for operations waited for on the device,
  // whose host handle may be gone before they finish. poll() asks every such probe.
  void end_when(std::uint64_t id, std::function<bool()> done);
  // Runs the probes of end_when (without holding the recorder's lock: a probe may take its
  // communicator's) and ends the operations whose probe says done. The watchdog polls before
  // it looks for the oldest issued operation; communicators poll as they issue.
  void poll();

  // The oldest operation still issued, if any: what a watchdog measures.
  std::optional<FlightEntry> oldest_issued() const;
  double now_s() const;
  FlightRecord snapshot(const std::string& reason) const;

  // The recorder every communicator of this process records into.
  static FlightRecorder& process();

 private:
  FlightEntry* find(std::uint64_t id);

  const std::size_t capacity_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::atomic<int> rank_{-1};
  std::atomic<std::int64_t> step_{0};
  mutable std::mutex mutex_;
  std::vector<FlightEntry> ring_;  // entry with id i is at i % capacity_
  std::uint64_t next_id_ = 0;
  std::vector<std::pair<std::uint64_t, std::function<bool()>>> probes_;  // end_when's, by id
  std::mutex poll_mutex_;  // one poll() at a time
};

// A record as a compact text (one line per entry, tab-separated): what a rank puts into the
// store for the supervisor. decode_flight_record throws std::runtime_error on malformed text.
std::string encode_flight_record(const FlightRecord& record);
FlightRecord decode_flight_record(const std::string& text);
// The same as JSON, for the file a user reads (<output.dir>/flight/rank-<r>.json).
std::string flight_record_json(const FlightRecord& record);

}  // namespace trainer::comm
