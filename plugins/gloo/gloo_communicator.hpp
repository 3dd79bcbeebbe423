// GlooCommunicator: one process group over a connected gloo context. Operations are queued
// FIFO onto one worker thread, so they run asynchronously yet in program order; posted sends
// are completed by a second thread so that a send never blocks the ops issued after it (a
// gloo TCP send only moves data once the peer has posted the matching recv, and pipeline
// schedules have both sides send before they receive).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "trainer/comm.hpp"

namespace gloo {
class Context;
namespace transport {
class UnboundBuffer;
}
}  // namespace gloo

namespace trainer::gloo_plugin {

// Completion state shared by an op and its CommWork handle.
struct WorkState {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
  double busy_seconds = 0;  // from the op's start on the worker to its completion
  std::chrono::steady_clock::time_point started;
  void start() { started = std::chrono::steady_clock::now(); }
  void finish(std::exception_ptr e);
};

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(std::string name, std::shared_ptr<gloo::Context> context, std::chrono::milliseconds timeout);
  // Waits for every issued op (each bounded by the timeout), then closes the connections.
  ~GlooCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }

  std::unique_ptr<CommWork> all_reduce(const Tensor& t) override;
  std::unique_ptr<CommWork> reduce_scatter(const Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommWork> all_gather(const Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommWork> broadcast(const Tensor& t, int root) override;
  std::unique_ptr<CommWork> send(const Tensor& t, int peer) override;
  std::unique_ptr<CommWork> recv(const Tensor& t, int peer) override;
  void barrier() override;

 private:
  // What an op does on the worker: returns true when finished, false when it handed its
  // completion to the send thread.
  using Body = std::function<bool(const std::shared_ptr<WorkState>&)>;
  struct Op {
    std::string what;  // "all_reduce #17 of 4096 f32", for error messages
    Body body;
    std::shared_ptr<WorkState> state;
  };
  struct PendingSend {
    std::string what;
    std::unique_ptr<gloo::transport::UnboundBuffer> buffer;
    std::vector<std::uint8_t> staging;  // the bytes being sent (buffer points into it)
    std::chrono::steady_clock::time_point deadline;
    std::shared_ptr<WorkState> state;
  };

  std::unique_ptr<CommWork> enqueue(std::string what, Body body);
  void worker_loop();
  void sender_loop();
  // Turns an exception from gloo into the CommError of op `what` and poisons the group.
  std::exception_ptr failure(const std::string& what, const std::exception& e);
  std::string prefix() const;  // "group 'dp' (rank 1 of 2): "
  [[noreturn]] void invalid(const std::string& message) const;
  void check_tensor(const Tensor& t, const char* role) const;
  std::string next_collective(const char* op, std::uint32_t* tag);

  // Bodies, run on the worker thread.
  void run_all_reduce(const Tensor& t, std::uint32_t tag);
  void run_reduce_scatter(const Tensor& out, const Tensor& in, std::uint32_t tag);
  void run_all_gather(const Tensor& out, const Tensor& in, std::uint32_t tag);
  void run_broadcast(const Tensor& t, int root, std::uint32_t tag);
  void run_recv(const Tensor& t, int peer, std::uint64_t slot);
  void post_send(const Tensor& t, int peer, std::uint64_t slot, std::string what,
                 const std::shared_ptr<WorkState>& state);

  const std::string name_;
  std::shared_ptr<gloo::Context> context_;
  const int rank_;
  const int size_;
  const std::chrono::milliseconds timeout_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable work_cv_;
  std::condition_variable send_cv_;
  std::deque<Op> queue_;
  std::deque<PendingSend> sends_;
  bool stopping_ = false;
  bool worker_done_ = false;  // the send thread stops only once the worker can post no more
  std::string poisoned_;     // the first failure; non-empty once the group is unusable
  std::uint64_t collectives_ = 0;             // collectives issued: the same count on every rank
  std::vector<std::uint64_t> sends_to_;       // per peer: p2p sequence numbers and slots
  std::vector<std::uint64_t> recvs_from_;

  std::thread worker_;
  std::thread sender_;
};

}  // namespace trainer::gloo_plugin
