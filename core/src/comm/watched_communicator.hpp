// WatchedCommunicator: a decorator around whatever Communicator the comm plugin made. Every
// operation is recorded in a FlightRecorder as it is issued and when its wait() returns, so
// that a Watchdog can see an operation that never completes, and a failure's dump shows the
// last collectives of this rank. A failed wait() calls the failure handler (normally
// abort_process) before the CommError would reach the caller.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/flight_recorder.hpp"
#include "trainer/comm.hpp"

namespace trainer::comm {

class WatchedCommunicator final : public Communicator {
 public:
  // Called with the CommError's message; when it returns, the error is rethrown.
  using FailureHandler = std::function<void(const std::string& message)>;

  WatchedCommunicator(std::unique_ptr<Communicator> inner, FlightRecorder& recorder, FailureHandler on_failure);
  ~WatchedCommunicator() override;

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  const std::string& name() const override { return inner_->name(); }

  std::unique_ptr<CommWork> all_reduce(const Tensor& t) override;
  std::unique_ptr<CommWork> reduce_scatter(const Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommWork> all_gather(const Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommWork> broadcast(const Tensor& t, int root) override;
  std::unique_ptr<CommWork> send(const Tensor& t, int peer) override;
  std::unique_ptr<CommWork> recv(const Tensor& t, int peer) override;
  void barrier() override;

 private:
  // Records the op, issues it through `issue`, and wraps the handle.
  std::unique_ptr<CommWork> watch(const char* op, std::uint64_t seq, int peer, std::uint64_t bytes,
                                  const std::function<std::unique_ptr<CommWork>()>& issue);

  std::unique_ptr<Communicator> inner_;
  FlightRecorder& recorder_;
  FailureHandler on_failure_;
  // Numbered like the gloo plugin numbers them: collectives (barrier included) per group,
  // point-to-point per peer and direction; the same numbers on every member.
  std::uint64_t collectives_ = 0;
  std::vector<std::uint64_t> sends_to_, recvs_from_;
};

}  // namespace trainer::comm

namespace trainer::comm {
// `inner` watched for this process: recorded in FlightRecorder::process(), and a failed wait
// ends the process through abort_process.
std::unique_ptr<Communicator> watch_for_process(std::unique_ptr<Communicator> inner);
}  // namespace trainer::comm
