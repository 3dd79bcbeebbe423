#include "comm/watched_communicator.hpp"

#include <utility>

#include "comm/process_abort.hpp"

namespace trainer::comm {

namespace {

class WatchedWork final : public CommWork {
 public:
  WatchedWork(std::unique_ptr<CommWork> inner, FlightRecorder& recorder, std::uint64_t id,
              const WatchedCommunicator::FailureHandler& on_failure)
      : inner_(std::move(inner)), recorder_(recorder), id_(id), on_failure_(on_failure) {}

  // A handle released without wait() can no longer be watched: completed if it is done,
  // otherwise dropped (its fate is unknown, and it must not look like a hang).
  ~WatchedWork() override {
    if (!ended_) recorder_.end(id_, inner_->ready() ? FlightEntry::State::completed : FlightEntry::State::dropped);
  }

  void wait() override {
    try {
      inner_->wait();
    } catch (const CommError& e) {
      fail(e);
      throw;
    }
    ended_ = true;
    recorder_.end(id_, FlightEntry::State::completed);
  }
  // Ordered on the device: the entry stays issued until the operation is done, so a hang
  // still ages in the recorder and the watchdog still names it; the probe holds the inner
  // handle, which may outlive this one.
  void wait_on_device() override {
    try {
      inner_->wait_on_device();
    } catch (const CommError& e) {
      fail(e);
      throw;
    }
    ended_ = true;
    if (inner_->ready()) {
      recorder_.end(id_, FlightEntry::State::completed);
      return;
    }
    recorder_.end_when(id_, [work = inner_] { return work->ready(); });
  }
  bool ready() override { return inner_->ready(); }
  double busy_seconds() const override { return inner_->busy_seconds(); }
  double exposed_seconds() const override { return inner_->exposed_seconds(); }

 private:
  void fail(const CommError& e) {
    ended_ = true;
    recorder_.end(id_, FlightEntry::State::failed, e.what());
    if (on_failure_) on_failure_(e.what());
  }

  std::shared_ptr<CommWork> inner_;
  FlightRecorder& recorder_;
  std::uint64_t id_;
  WatchedCommunicator::FailureHandler on_failure_;  // a copy, so a handle never refers into its communicator
  bool ended_ = false;
};

}  // namespace

WatchedCommunicator::WatchedCommunicator(std::unique_ptr<Communicator> inner, FlightRecorder& recorder,
                                         FailureHandler on_failure)
    : inner_(std::move(inner)),
      recorder_(recorder),
      on_failure_(std::move(on_failure)),
      sends_to_(static_cast<std::size_t>(inner_->size()), 0),
      recvs_from_(static_cast<std::size_t>(inner_->size()), 0) {}

WatchedCommunicator::~WatchedCommunicator() = default;

std::unique_ptr<CommWork> WatchedCommunicator::watch(const char* op, std::uint64_t seq, int peer, std::uint64_t bytes,
                                                     const std::function<std::unique_ptr<CommWork>()>& issue) {
  recorder_.poll();  // ends the device-waited operations that are done by now
  const std::uint64_t id = recorder_.begin(name(), op, seq, peer, bytes);
  std::unique_ptr<CommWork> work;
  try {
    work = issue();
  } catch (const CommError& e) {  // refused at issue (bad arguments, a poisoned group)
    recorder_.end(id, FlightEntry::State::failed, e.what());
    throw;
  }
  return std::make_unique<WatchedWork>(std::move(work), recorder_, id, on_failure_);
}

std::unique_ptr<CommWork> WatchedCommunicator::all_reduce(const Tensor& t) {
  return watch("all_reduce", ++collectives_, -1, t.bytes(), [&] { return inner_->all_reduce(t); });
}

std::unique_ptr<CommWork> WatchedCommunicator::reduce_scatter(const Tensor& out, const Tensor& in) {
  return watch("reduce_scatter", ++collectives_, -1, in.bytes(), [&] { return inner_->reduce_scatter(out, in); });
}

std::unique_ptr<CommWork> WatchedCommunicator::all_gather(const Tensor& out, const Tensor& in) {
  return watch("all_gather", ++collectives_, -1, out.bytes(), [&] { return inner_->all_gather(out, in); });
}

std::unique_ptr<CommWork> WatchedCommunicator::broadcast(const Tensor& t, int root) {
  return watch("broadcast", ++collectives_, root, t.bytes(), [&] { return inner_->broadcast(t, root); });
}

std::unique_ptr<CommWork> WatchedCommunicator::send(const Tensor& t, int peer) {
  const std::uint64_t seq = peer >= 0 && peer < size() ? ++sends_to_[static_cast<std::size_t>(peer)] : 0;
  return watch("send", seq, peer, t.bytes(), [&] { return inner_->send(t, peer); });
}

std::unique_ptr<CommWork> WatchedCommunicator::recv(const Tensor& t, int peer) {
  const std::uint64_t seq = peer >= 0 && peer < size() ? ++recvs_from_[static_cast<std::size_t>(peer)] : 0;
  return watch("recv", seq, peer, t.bytes(), [&] { return inner_->recv(t, peer); });
}

void WatchedCommunicator::barrier() {
  const std::uint64_t id = recorder_.begin(name(), "barrier", ++collectives_, -1, 0);
  try {
    inner_->barrier();
  } catch (const CommError& e) {
    recorder_.end(id, FlightEntry::State::failed, e.what());
    if (on_failure_) on_failure_(e.what());
    throw;
  }
  recorder_.end(id, FlightEntry::State::completed);
}

}  // namespace trainer::comm

namespace trainer::comm {

std::unique_ptr<Communicator> watch_for_process(std::unique_ptr<Communicator> inner) {
  return std::make_unique<WatchedCommunicator>(std::move(inner), FlightRecorder::process(), [](const std::string& m) {
    std::string message = "a collective failed: ";
    message += m;
    abort_process(message);
  });
}

}  // namespace trainer::comm
