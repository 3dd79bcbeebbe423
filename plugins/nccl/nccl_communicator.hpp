// NcclCommunicator: one process group as one non-blocking NCCL communicator, on the device
// of the cuda backend. Every op runs on the group's own communication stream:
//   issue   the comm stream waits for an event recorded on the backend's (compute) stream,
//           so the op sees every op issued before it; start/done events bracket the op.
//   wait    the compute stream waits for the done event (later compute sees the result),
//           and the host polls the event and the communicator's async error until the op
//           is done or the group's timeout passes; then the communicator is aborted, so a
//           hung collective becomes a CommError naming the group, the op and its number.
// Busy time is done - start on the comm stream; exposed time is how long the compute stream
// stood at the wait (done - an event recorded there), both from CUDA events.
// Tensors an op uses are held until its done event has completed: the backend's pool hands
// a freed block to the next allocation at once, which is only safe for work on one stream.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "trainer/comm.hpp"

namespace trainer::nccl_plugin {

struct OpState {
  std::string what;          // "group 'dp' (rank 0 of 2): all_reduce #17 of 4096 f32"
  std::vector<Tensor> keep;  // the op's tensors, until its done event completes
  cudaEvent_t start = nullptr;
  cudaEvent_t done = nullptr;
  cudaEvent_t stall = nullptr;  // on the compute stream, at wait() or order_after()
  bool ordered = false;         // the compute stream already waits for `done` (order_after)
  bool finished = false;        // waited for (successfully or not), or seen done after order_after
  std::string error;            // non-empty: the op failed
  double busy_seconds = 0;
  double exposed_seconds = 0;
  ~OpState();
};

// The group's state, shared by the communicator and every CommWork it returned, so a work
// handle may outlive its communicator.
class Group {
 public:
  Group(std::string name, int rank, int size, int device, cudaStream_t compute, ncclComm_t comm,
        std::chrono::milliseconds timeout);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // Launches `launch(comm, stream)` as op `what` over the tensors `keep` (no launch at all
  // when `launch` is empty: an op of zero elements still gets its events, in order).
  using Launch = std::function<ncclResult_t(ncclComm_t, cudaStream_t)>;
  std::shared_ptr<OpState> issue(std::string what, std::vector<Tensor> keep, const Launch& launch);
  void wait(OpState& op);
  // CommWork::wait_on_device: the compute stream waits for the op; the host does not. Throws
  // CommError if the op or the group has already failed (the communicator's asynchronous
  // error included).
  void order_after(OpState& op);
  bool ready(OpState& op);
  // Fills the op's busy and exposed seconds once it is done (a no-op before).
  void settle_times(OpState& op);
  // Waits for every issued op, then finalizes and destroys the communicator (aborts it if
  // that does not finish within the timeout). Idempotent.
  void close();

  std::string prefix() const;  // "group 'dp' (rank 1 of 2): "
  const std::string name;
  const int rank;
  const int size;

 private:
  // Polls the communicator after a call answered ncclInProgress, until it settles.
  void settle(ncclResult_t result, const std::string& what);
  void finish(OpState& op);  // under the mutex, `done` complete: times, finished, tensors released
  [[noreturn]] void fail(const std::string& what, const std::string& why);  // aborts, throws
  void abort_group(const std::string& why);
  void check_usable(const std::string& what) const;
  void cuda(cudaError_t status, const std::string& what, const char* call);
  void set_device();
  void reap();  // forgets finished ops whose done event completed

  const int device_;
  const cudaStream_t compute_;
  const std::chrono::milliseconds timeout_;
  ncclComm_t comm_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;  // re-recorded on the compute stream at each issue
  std::string poisoned_;         // the first failure; the group is unusable once set
  std::deque<std::shared_ptr<OpState>> inflight_;

 public:
  std::mutex mutex;  // one NCCL call at a time on the communicator
};

class NcclCommunicator final : public Communicator {
 public:
  // barrier_word: one i32 of device memory from the backend, summed by barrier().
  NcclCommunicator(std::shared_ptr<Group> group, Tensor barrier_word);
  ~NcclCommunicator() override;

  int rank() const override { return group_->rank; }
  int size() const override { return group_->size; }
  const std::string& name() const override { return group_->name; }

  std::unique_ptr<CommWork> all_reduce(const Tensor& t) override;
  std::unique_ptr<CommWork> reduce_scatter(const Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommWork> all_gather(const Tensor& out, const Tensor& in) override;
  std::unique_ptr<CommWork> broadcast(const Tensor& t, int root) override;
  std::unique_ptr<CommWork> send(const Tensor& t, int peer) override;
  std::unique_ptr<CommWork> recv(const Tensor& t, int peer) override;
  void barrier() override;

  // Point-to-point with `peer` in one direction (outgoing: this rank sends) gets its own
  // two-rank group (nccl_plugin.cpp sets these up for GroupSpec::point_to_point).
  void add_lane(int peer, bool outgoing, std::shared_ptr<Group> lane);

 private:
  [[noreturn]] void invalid(const std::string& message) const;
  void check_tensor(const Tensor& t, const char* role) const;
  void check_peer(int peer, const char* op) const;
  std::string next_collective(const char* op, std::int64_t numel, DType dtype);
  std::unique_ptr<CommWork> work(std::shared_ptr<OpState> op) const;

  std::shared_ptr<Group> group_;
  std::uint64_t collectives_ = 0;        // the same count on every member
  std::vector<std::uint64_t> sends_to_;  // per peer
  std::vector<std::uint64_t> recvs_from_;
  Tensor barrier_word_;                  // one i32 on the device, for barrier()
  std::map<int, std::shared_ptr<Group>> send_lanes_, recv_lanes_;  // by peer
};

ncclDataType_t nccl_dtype(DType dtype);

}  // namespace trainer::nccl_plugin
