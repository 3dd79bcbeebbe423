#include "launch/worker_health.hpp"

#include <fmt/format.h>

#include <fstream>

#include "comm/flight_recorder.hpp"
#include "comm/process_abort.hpp"
#include "launch/tcp_store.hpp"

namespace trainer::launch {

std::string heartbeat_key(int rank) { return fmt::format("heartbeat/{}", rank); }
std::string flight_key(int rank) { return fmt::format("flight/{}", rank); }

WorkerHealth::WorkerHealth(const WorkerIdentity& id, std::chrono::milliseconds interval,
                           std::filesystem::path flight_dir)
    : id_(id), interval_(interval), flight_dir_(std::move(flight_dir)) {
  comm::FlightRecorder::process().set_rank(id.rank);
  comm::set_dump_hook([this](const std::string& reason) { dump(reason); });
  thread_ = std::thread([this] { loop(); });
}

WorkerHealth::~WorkerHealth() {
  stopping_ = true;
  thread_.join();
  comm::set_dump_hook(nullptr);
}

// Its own connection: the trainer's client may be blocked in a long get, and a dump may
// come from any thread while another holds a connection.
void WorkerHealth::dump(const std::string& reason) {
  if (dumped_.exchange(true)) return;
  const comm::FlightRecord record = comm::FlightRecorder::process().snapshot(reason);
  std::error_code ec;
  std::filesystem::create_directories(flight_dir_, ec);
  const auto file = flight_dir_ / fmt::format("rank-{}.json", id_.rank);
  std::ofstream(file) << comm::flight_record_json(record);
  const std::string text = comm::encode_flight_record(record);
  TcpStoreClient store(id_.store_addr, id_.store_port, std::chrono::seconds(2));
  store.set(flight_key(id_.rank), std::vector<std::uint8_t>(text.begin(), text.end()));
  store.set(kFlightRequestKey, {});  // the other ranks dump too
}

void WorkerHealth::loop() {
  try {
    TcpStoreClient store(id_.store_addr, id_.store_port, std::chrono::seconds(10));
    const auto poll = std::chrono::milliseconds(100);
    auto next_beat = std::chrono::steady_clock::now();
    bool dumped = false;
    while (!stopping_) {
      const auto now = std::chrono::steady_clock::now();
      if (interval_.count() > 0 && now >= next_beat) {
        store.add(heartbeat_key(id_.rank), 1);
        next_beat = now + interval_;
      }
      if (dumped) {
        std::this_thread::sleep_for(poll);
        continue;
      }
      try {
        store.wait({kFlightRequestKey}, poll);  // doubles as the sleep between checks
      } catch (const StoreError&) {
        continue;  // not requested (a timeout is a normal reply: the connection stays usable)
      }
      dumped = true;
      comm::dump_flight_record("another rank failed; asked for this rank's flight record");
    }
  } catch (const std::exception&) {
    // The store is gone (the job is ending): nothing left to report to.
  }
}

}  // namespace trainer::launch
