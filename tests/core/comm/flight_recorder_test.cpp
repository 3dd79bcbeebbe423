// The flight recorder's ring, its text and JSON forms, and the watched communicator and
// watchdog that fill and read it (over a fake communicator whose operations complete when
// the test says so).
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "comm/flight_recorder.hpp"
#include "comm/watchdog.hpp"
#include "comm/watched_communicator.hpp"

using namespace trainer;
using namespace trainer::comm;
using namespace std::chrono_literals;
using State = FlightEntry::State;

namespace {

// A work the test completes (or fails) by hand.
struct Switch {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  bool fail = false;
  void finish(bool failed) {
    {
      std::lock_guard lock(m);
      done = true;
      fail = failed;
    }
    cv.notify_all();
  }
};

// device: wait_on_device returns at once, as a device plugin's does (the stream waits, the
// host does not); otherwise it is the SDK default, a blocking wait().
class FakeWork final : public CommWork {
 public:
  FakeWork(std::shared_ptr<Switch> s, bool device) : s_(std::move(s)), device_(device) {}
  void wait_on_device() override {
    if (!device_) wait();
  }
  void wait() override {
    std::unique_lock lock(s_->m);
    s_->cv.wait(lock, [&] { return s_->done; });
    if (s_->fail) throw CommError("group 'dp': all_reduce #2 failed: connection closed by peer");
  }
  bool ready() override {
    std::lock_guard lock(s_->m);
    return s_->done;
  }
  double busy_seconds() const override { return 0; }
  double exposed_seconds() const override { return 0.25; }

 private:
  std::shared_ptr<Switch> s_;
  bool device_;
};

class FakeComm final : public Communicator {
 public:
  explicit FakeComm(bool device = false) : device_(device) {}
  std::vector<std::shared_ptr<Switch>> issued;
  int rank() const override { return 0; }
  int size() const override { return 3; }
  const std::string& name() const override { return name_; }
  std::unique_ptr<CommWork> all_reduce(const Tensor&) override { return next(); }
  std::unique_ptr<CommWork> reduce_scatter(const Tensor&, const Tensor&) override { return next(); }
  std::unique_ptr<CommWork> all_gather(const Tensor&, const Tensor&) override { return next(); }
  std::unique_ptr<CommWork> broadcast(const Tensor&, int) override { return next(); }
  std::unique_ptr<CommWork> send(const Tensor&, int) override { return next(); }
  std::unique_ptr<CommWork> recv(const Tensor&, int) override { return next(); }
  void barrier() override {}

 private:
  std::unique_ptr<CommWork> next() {
    issued.push_back(std::make_shared<Switch>());
    return std::make_unique<FakeWork>(issued.back(), device_);
  }
  std::string name_ = "dp";
  bool device_;
};

}  // namespace

TEST_CASE("the recorder keeps the last operations in a ring, stamped with the step", "[comm][flight]") {
  FlightRecorder rec(4);
  rec.set_rank(2);
  rec.set_step(7);
  std::vector<std::uint64_t> ids;
  for (int i = 1; i <= 6; ++i) ids.push_back(rec.begin("dp", "all_reduce", static_cast<std::uint64_t>(i), -1, 64));
  rec.end(ids[0], State::completed);  // fell out of the ring: ignored
  rec.end(ids[2], State::completed);
  rec.end(ids[3], State::failed, "boom");
  const FlightRecord r = rec.snapshot("test");
  REQUIRE(r.rank == 2);
  REQUIRE(r.step == 7);
  REQUIRE(r.entries.size() == 4);
  CHECK(r.entries.front().seq == 3);
  CHECK(r.entries.back().seq == 6);
  CHECK(r.entries[0].state == State::completed);
  CHECK(r.entries[1].state == State::failed);
  CHECK(r.entries[1].error == "boom");
  CHECK(r.entries[2].state == State::issued);
  CHECK(r.entries[2].ended_s < 0);
  CHECK(r.entries[0].step == 7);
  const auto oldest = rec.oldest_issued();
  REQUIRE(oldest);
  CHECK(oldest->seq == 5);
  rec.end(ids[4], State::completed);
  rec.end(ids[5], State::dropped);
  CHECK_FALSE(rec.oldest_issued());
}

TEST_CASE("a record reads back from its text form; JSON names every field", "[comm][flight]") {
  FlightRecorder rec(8);
  rec.set_rank(1);
  rec.set_step(20);
  rec.end(rec.begin("dp", "all_reduce", 41, -1, 16), State::completed);
  rec.begin("dp", "recv", 3, 2, 1024);
  const FlightRecord r = rec.snapshot("collective timeout:\tgroup 'dp'\nall_reduce #42");
  const FlightRecord back = decode_flight_record(encode_flight_record(r));
  CHECK(back.rank == 1);
  CHECK(back.step == 20);
  CHECK(back.reason == "collective timeout: group 'dp' all_reduce #42");  // tabs and newlines cleaned
  REQUIRE(back.entries.size() == 2);
  CHECK(back.entries[0].op == "all_reduce");
  CHECK(back.entries[0].seq == 41);
  CHECK(back.entries[0].state == State::completed);
  CHECK(back.entries[1].op == "recv");
  CHECK(back.entries[1].peer == 2);
  CHECK(back.entries[1].bytes == 1024);
  CHECK(back.entries[1].state == State::issued);
  CHECK(back.entries[1].ended_s < 0);
  CHECK_THROWS_WITH(decode_flight_record("hello"), Catch::Contains("not a flight record"));
  CHECK_THROWS_WITH(decode_flight_record("flight 1\t1\tx\t0\nr\n"), Catch::Contains("malformed number"));
  const std::string json = flight_record_json(r);
  for (const char* field : {"\"rank\": 1", "\"step\": 20", "\"op\": \"all_reduce\"", "\"seq\": 41",
                            "\"state\": \"issued\"", "\"ended_s\": null", "\"peer\": 2"}) {
    CHECK_THAT(json, Catch::Contains(field));
  }
}

TEST_CASE("the watched communicator numbers and records every operation", "[comm][flight]") {
  FlightRecorder rec(64);
  auto fake = std::make_unique<FakeComm>();
  FakeComm& inner = *fake;
  std::vector<std::string> failures;
  WatchedCommunicator comm(std::move(fake), rec, [&](const std::string& m) { failures.push_back(m); });
  Tensor t;
  auto a = comm.all_reduce(t);
  auto b = comm.all_gather(t, t);
  auto s1 = comm.send(t, 1);
  auto s2 = comm.send(t, 1);
  auto r1 = comm.recv(t, 2);
  comm.barrier();
  inner.issued[0]->finish(false);
  a->wait();
  CHECK(a->exposed_seconds() == 0.25);  // a device plugin's own measure passes through
  inner.issued[1]->finish(true);
  CHECK_THROWS_AS(b->wait(), CommError);
  REQUIRE(failures.size() == 1);
  CHECK_THAT(failures[0], Catch::Contains("connection closed"));
  inner.issued[2]->finish(false);
  s1.reset();  // released unwaited, but done: completed
  s2.reset();  // released unwaited and not done: dropped, never a hang
  const auto entries = rec.snapshot("").entries;
  REQUIRE(entries.size() == 6);
  CHECK(entries[0].op == "all_reduce");
  CHECK(entries[0].seq == 1);
  CHECK(entries[0].state == State::completed);
  CHECK(entries[1].seq == 2);
  CHECK(entries[1].state == State::failed);
  CHECK(entries[2].op == "send");
  CHECK(entries[2].seq == 1);
  CHECK(entries[2].peer == 1);
  CHECK(entries[2].state == State::completed);
  CHECK(entries[3].seq == 2);
  CHECK(entries[3].state == State::dropped);
  CHECK(entries[4].op == "recv");
  CHECK(entries[4].seq == 1);
  CHECK(entries[4].state == State::issued);
  CHECK(entries[5].op == "barrier");
  CHECK(entries[5].seq == 3);  // collectives share one count, as in the comm plugin
  CHECK(entries[5].state == State::completed);
  inner.issued[4]->finish(false);
  r1->wait();
}

TEST_CASE("the watchdog fires once for an operation issued longer than the timeout", "[comm][flight]") {
  FlightRecorder rec(16);
  rec.set_step(20);
  std::atomic<int> fired{0};
  std::string late;
  double age = 0;
  std::mutex m;
  {
    Watchdog dog(rec, 200ms, [&](const FlightEntry& e, double a) {
      std::lock_guard lock(m);
      late = describe(e);
      age = a;
      ++fired;
    });
    const auto quick = rec.begin("dp", "all_reduce", 1, -1, 16);
    std::this_thread::sleep_for(50ms);
    rec.end(quick, State::completed);
    std::this_thread::sleep_for(300ms);
    CHECK(fired == 0);  // completed in time
    const auto t0 = std::chrono::steady_clock::now();
    rec.begin("dp", "all_reduce", 2, -1, 16);
    while (fired == 0 && std::chrono::steady_clock::now() - t0 < 2s) std::this_thread::sleep_for(5ms);
    const double seen = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(fired == 1);
    CHECK(seen >= 0.2);
    CHECK(seen < 0.5);
    std::this_thread::sleep_for(300ms);
  }
  CHECK(fired == 1);
  CHECK(late == "group 'dp' all_reduce #2 (16 bytes, step 20)");
  CHECK(age >= 0.2);
}

TEST_CASE("an operation waited for on the device stays issued until it is done, handle or not", "[comm][flight]") {
  FlightRecorder rec(64);
  auto fake = std::make_unique<FakeComm>(true);
  FakeComm& inner = *fake;
  std::vector<std::string> failures;
  WatchedCommunicator comm(std::move(fake), rec, [&](const std::string& m) { failures.push_back(m); });
  Tensor t;
  auto a = comm.all_reduce(t);
  a->wait_on_device();  // returns although the operation is still running
  a.reset();            // and the handle may go: the recorder keeps watching
  rec.poll();
  CHECK(rec.snapshot("").entries[0].state == State::issued);
  CHECK(rec.oldest_issued().has_value());
  inner.issued[0]->finish(false);
  rec.poll();
  CHECK(rec.snapshot("").entries[0].state == State::completed);
  CHECK_FALSE(rec.oldest_issued().has_value());

  auto b = comm.all_reduce(t);  // already done when waited for: ends at once
  inner.issued[1]->finish(false);
  b->wait_on_device();
  CHECK(rec.snapshot("").entries[1].state == State::completed);

  auto c = comm.all_reduce(t);  // fails after the device wait: a later wait() reports it
  c->wait_on_device();
  inner.issued[2]->finish(true);
  CHECK_THROWS_AS(c->wait(), CommError);
  REQUIRE(failures.size() == 1);
  CHECK(rec.snapshot("").entries[2].state == State::failed);
  rec.poll();  // the probe finds it done but does not overwrite the failure
  CHECK(rec.snapshot("").entries[2].state == State::failed);

  auto d = comm.all_reduce(t);  // the next issue polls: d's predecessors are settled
  CHECK(rec.snapshot("").entries[3].state == State::issued);
  inner.issued[3]->finish(false);
  d->wait();
}

TEST_CASE("the watchdog names a device-waited operation that never completes", "[comm][flight]") {
  FlightRecorder rec(16);
  std::atomic<int> fired{0};
  std::string late;
  std::mutex m;
  auto fake = std::make_unique<FakeComm>(true);
  FakeComm& inner = *fake;
  WatchedCommunicator comm(std::move(fake), rec, nullptr);
  Tensor t;
  {
    Watchdog dog(rec, 200ms, [&](const FlightEntry& e, double) {
      std::lock_guard lock(m);
      late = describe(e);
      ++fired;
    });
    comm.all_reduce(t)->wait_on_device();  // completes in time: the watchdog's poll ends it
    std::this_thread::sleep_for(50ms);
    inner.issued[0]->finish(false);
    std::this_thread::sleep_for(300ms);
    CHECK(fired == 0);
    comm.all_reduce(t)->wait_on_device();  // never completes, its handle long gone
    const auto t0 = std::chrono::steady_clock::now();
    while (fired == 0 && std::chrono::steady_clock::now() - t0 < 2s) std::this_thread::sleep_for(5ms);
    CHECK(fired == 1);
  }
  CHECK(late == "group 'dp' all_reduce #2 (0 bytes, step 0)");  // an empty tensor here
  inner.issued[1]->finish(false);
}
