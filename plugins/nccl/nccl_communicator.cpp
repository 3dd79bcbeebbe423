#include "nccl_communicator.hpp"

#include <algorithm>
#include <cstdio>
#include <thread>
#include <utility>

namespace trainer::nccl_plugin {
namespace {

using Clock = std::chrono::steady_clock;

std::string nccl_error(ncclResult_t r, ncclComm_t comm) {
  std::string s = ncclGetErrorString(r);
  const char* last = ncclGetLastError(comm);
  if (last && *last) {
    s += " (";
    s += last;
    s += ")";
  }
  return s;
}

std::string sized(std::int64_t numel, DType dtype) {
  std::string s = std::to_string(numel);
  s += " ";
  s += dtype_name(dtype);
  return s;
}

// Polling: spin (yielding) for the first stretch, since most waits are short, then sleep a
// little so that a long wait does not take a core from the rank's other threads.
void back_off(int spins) {
  if (spins < 2000) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

// cudaEventQuery's "not ready" is also left as the thread's last error, where the backend's
// next launch check would find it: clear it (as PyTorch does). Other errors are returned.
cudaError_t query(cudaEvent_t e) {
  const cudaError_t q = cudaEventQuery(e);
  if (q == cudaErrorNotReady) cudaGetLastError();
  return q;
}

// Milliseconds from a to b, when both have completed (a failure is cleared likewise).
bool elapsed_ms(cudaEvent_t a, cudaEvent_t b, float* ms) {
  if (cudaEventElapsedTime(ms, a, b) == cudaSuccess) return true;
  cudaGetLastError();
  return false;
}

class NcclWork final : public CommWork {
 public:
  NcclWork(std::shared_ptr<Group> group, std::shared_ptr<OpState> op) : group_(std::move(group)), op_(std::move(op)) {}
  void wait() override { group_->wait(*op_); }
  void wait_on_device() override { group_->order_after(*op_); }
  bool ready() override { return group_->ready(*op_); }
  double busy_seconds() const override {
    group_->settle_times(*op_);
    return op_->busy_seconds;
  }
  double exposed_seconds() const override {
    group_->settle_times(*op_);
    return op_->exposed_seconds;
  }

 private:
  std::shared_ptr<Group> group_;
  std::shared_ptr<OpState> op_;
};

}  // namespace

ncclDataType_t nccl_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32: return ncclFloat32;
    case DType::bf16: return ncclBfloat16;
    case DType::i32: return ncclInt32;
    case DType::f64: return ncclFloat64;
  }
  return ncclFloat32;
}

OpState::~OpState() {
  // Errors ignored: destroying an event whose work is pending is allowed (CUDA defers it).
  for (cudaEvent_t e : {start, done, stall}) {
    if (e) cudaEventDestroy(e);
  }
}

// ---- Group ----

Group::Group(std::string name_, int rank_, int size_, int device, cudaStream_t compute, ncclComm_t comm,
             std::chrono::milliseconds timeout)
    : name(std::move(name_)), rank(rank_), size(size_), device_(device), compute_(compute), timeout_(timeout),
      comm_(comm) {
  set_device();
  // The highest priority: a collective's kernels get SMs ahead of queued compute kernels, so
  // communication overlapped with compute is not starved by it.
  int least = 0, greatest = 0;
  cuda(cudaDeviceGetStreamPriorityRange(&least, &greatest), prefix() + "create", "cudaDeviceGetStreamPriorityRange");
  cuda(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, greatest), prefix() + "create",
       "cudaStreamCreateWithPriority");
  cuda(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), prefix() + "create", "cudaEventCreate");
}

Group::~Group() {
  close();
  if (ready_) cudaEventDestroy(ready_);
  if (stream_) cudaStreamDestroy(stream_);
}

std::string Group::prefix() const {
  std::string s = "group '";
  s += name;
  s += "' (rank ";
  s += std::to_string(rank);
  s += " of ";
  s += std::to_string(size);
  s += "): ";
  return s;
}

void Group::set_device() {
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess || current != device_) {
    cuda(cudaSetDevice(device_), prefix() + "select the device", "cudaSetDevice");
  }
}

void Group::cuda(cudaError_t status, const std::string& what, const char* call) {
  if (status == cudaSuccess) return;
  std::string s = what;
  s += ": ";
  s += call;
  s += " failed: ";
  s += cudaGetErrorName(status);
  s += ": ";
  s += cudaGetErrorString(status);
  throw CommError(s);
}

void Group::check_usable(const std::string& what) const {
  if (!poisoned_.empty()) {
    std::string s = what;
    s += " not run: the group is unusable since ";
    s += poisoned_;
    throw CommError(s);
  }
  if (!comm_) {
    std::string s = what;
    s += " not run: the communicator is closed";
    throw CommError(s);
  }
}

void Group::abort_group(const std::string& why) {
  if (poisoned_.empty()) poisoned_ = why;
  // Ops whose done event has not completed never will with a result: they fail too.
  for (auto& op : inflight_) {
    if (op->error.empty() && !op->finished && query(op->done) != cudaSuccess) {
      op->error = op->what;
      op->error += " failed: the group was aborted since ";
      op->error += why;
    }
  }
  if (comm_) {
    ncclCommAbort(comm_);  // also stops its kernels, so the streams drain
    comm_ = nullptr;
  }
}

void Group::fail(const std::string& what, const std::string& why) {
  std::string s = what;
  s += " failed: ";
  s += why;
  abort_group(s);
  throw CommError(s);
}

void Group::settle(ncclResult_t result, const std::string& what) {
  const auto deadline = Clock::now() + timeout_;
  for (int spins = 0; result == ncclInProgress; ++spins) {
    if (Clock::now() > deadline) {
      fail(what, "NCCL did not finish the call within the timeout of " + std::to_string(timeout_.count()) +
                     " ms (a member is missing?); NCCL communicator aborted");
    }
    back_off(spins);
    const ncclResult_t polled = ncclCommGetAsyncError(comm_, &result);
    if (polled != ncclSuccess) result = polled;
  }
  if (result != ncclSuccess) fail(what, nccl_error(result, comm_) + "; NCCL communicator aborted");
}

void Group::reap() {
  while (!inflight_.empty()) {
    auto& op = inflight_.front();
    if (!op->finished && query(op->done) != cudaSuccess) break;
    op->keep.clear();
    inflight_.pop_front();
  }
}

std::shared_ptr<OpState> Group::issue(std::string what, std::vector<Tensor> keep, const Launch& launch) {
  std::lock_guard lock(mutex);
  check_usable(what);
  set_device();
  reap();
  auto op = std::make_shared<OpState>();
  op->what = std::move(what);
  op->keep = std::move(keep);
  cuda(cudaEventCreate(&op->start), op->what, "cudaEventCreate");
  cuda(cudaEventCreate(&op->done), op->what, "cudaEventCreate");
  cuda(cudaEventCreate(&op->stall), op->what, "cudaEventCreate");
  // After everything issued to the backend so far: the op reads what compute wrote.
  cuda(cudaEventRecord(ready_, compute_), op->what, "cudaEventRecord");
  cuda(cudaStreamWaitEvent(stream_, ready_, 0), op->what, "cudaStreamWaitEvent");
  cuda(cudaEventRecord(op->start, stream_), op->what, "cudaEventRecord");
  inflight_.push_back(op);
  if (launch) settle(launch(comm_, stream_), op->what);
  cuda(cudaEventRecord(op->done, stream_), op->what, "cudaEventRecord");
  return op;
}

bool Group::ready(OpState& op) {
  std::lock_guard lock(mutex);
  if (op.finished || !op.error.empty()) return true;
  const cudaError_t q = query(op.done);
  if (q == cudaSuccess && op.ordered) finish(op);
  if (q != cudaErrorNotReady) return true;  // done, or an error wait() reports
  if (comm_) {
    ncclResult_t async = ncclSuccess;
    if (ncclCommGetAsyncError(comm_, &async) != ncclSuccess ||
        (async != ncclSuccess && async != ncclInProgress)) {
      return true;
    }
  }
  return false;
}

void Group::wait(OpState& op) {
  std::lock_guard lock(mutex);
  if (!op.error.empty()) {
    op.finished = true;
    throw CommError(op.error);
  }
  if (op.finished) return;
  set_device();
  if (comm_ && !op.ordered) {
    // Later compute sees the result; the stall event marks where compute reached the wait.
    cuda(cudaEventRecord(op.stall, compute_), op.what, "cudaEventRecord");
    cuda(cudaStreamWaitEvent(compute_, op.done, 0), op.what, "cudaStreamWaitEvent");
  }
  const auto deadline = Clock::now() + timeout_;
  for (int spins = 0;; ++spins) {
    const cudaError_t q = query(op.done);
    if (q == cudaSuccess) break;
    if (q != cudaErrorNotReady) {
      fail(op.what, std::string("the device reported ") + cudaGetErrorName(q) + ": " + cudaGetErrorString(q));
    }
    if (comm_ && spins % 64 == 0) {
      ncclResult_t async = ncclSuccess;
      const ncclResult_t polled = ncclCommGetAsyncError(comm_, &async);
      if (polled != ncclSuccess) async = polled;
      if (async != ncclSuccess && async != ncclInProgress) {
        fail(op.what, "NCCL reported " + nccl_error(async, comm_) + "; NCCL communicator aborted");
      }
    }
    if (Clock::now() > deadline) {
      fail(op.what, "timed out after " + std::to_string(timeout_.count()) +
                        " ms (a member did not take part?); NCCL communicator aborted, the group is unusable");
    }
    back_off(spins);
  }
  finish(op);
}

void Group::finish(OpState& op) {
  float ms = 0;
  if (elapsed_ms(op.start, op.done, &ms)) op.busy_seconds = ms / 1000.0;
  // Compute had not reached the wait when the op finished: nothing exposed.
  op.exposed_seconds = 0;
  if ((comm_ || op.ordered) && query(op.stall) == cudaSuccess && elapsed_ms(op.stall, op.done, &ms)) {
    op.exposed_seconds = std::max(0.0, ms / 1000.0);
  }
  op.finished = true;
  op.keep.clear();
}

void Group::order_after(OpState& op) {
  std::lock_guard lock(mutex);
  if (!op.error.empty()) {
    op.finished = true;
    throw CommError(op.error);
  }
  if (op.finished || op.ordered) return;
  set_device();
  if (!comm_) {
    // Closed or aborted since: the op either ran (its event completed) or never will.
    if (query(op.done) == cudaSuccess) return finish(op);
    throw CommError(op.what + " not waited for: the communicator is closed");
  }
  ncclResult_t async = ncclSuccess;
  const ncclResult_t polled = ncclCommGetAsyncError(comm_, &async);
  if (polled != ncclSuccess) async = polled;
  if (async != ncclSuccess && async != ncclInProgress) {
    fail(op.what, "NCCL reported " + nccl_error(async, comm_) + "; NCCL communicator aborted");
  }
  cuda(cudaEventRecord(op.stall, compute_), op.what, "cudaEventRecord");
  cuda(cudaStreamWaitEvent(compute_, op.done, 0), op.what, "cudaStreamWaitEvent");
  op.ordered = true;
}

void Group::settle_times(OpState& op) {
  std::lock_guard lock(mutex);
  if (op.finished || !op.error.empty()) return;
  if (query(op.done) == cudaSuccess) finish(op);
}

void Group::close() {
  std::lock_guard lock(mutex);
  if (!comm_) {
    inflight_.clear();
    return;
  }
  if (cudaSetDevice(device_) != cudaSuccess) return;
  const auto deadline = Clock::now() + timeout_;
  std::string problem;
  for (auto& op : inflight_) {
    for (int spins = 0; query(op->done) == cudaErrorNotReady; ++spins) {
      if (Clock::now() > deadline) {
        problem = op->what + " still running when the communicator was destroyed";
        break;
      }
      back_off(spins);
    }
    if (!problem.empty()) break;
  }
  if (problem.empty()) {
    ncclResult_t r = ncclCommFinalize(comm_);
    for (int spins = 0; r == ncclInProgress; ++spins) {
      if (Clock::now() > deadline) {
        problem = "finalizing the communicator did not finish within the timeout";
        break;
      }
      back_off(spins);
      const ncclResult_t polled = ncclCommGetAsyncError(comm_, &r);
      if (polled != ncclSuccess) r = polled;
    }
    if (problem.empty() && r != ncclSuccess) problem = "finalizing the communicator failed: " + nccl_error(r, comm_);
  }
  if (problem.empty()) {
    ncclCommDestroy(comm_);
    comm_ = nullptr;
  } else {
    std::fprintf(stderr, "nccl: %s%s; aborting it\n", prefix().c_str(), problem.c_str());
    abort_group(problem);
  }
  inflight_.clear();
}

// ---- NcclCommunicator ----

NcclCommunicator::NcclCommunicator(std::shared_ptr<Group> group, Tensor barrier_word)
    : group_(std::move(group)),
      sends_to_(static_cast<std::size_t>(group_->size), 0),
      recvs_from_(static_cast<std::size_t>(group_->size), 0),
      barrier_word_(std::move(barrier_word)) {}

// Work handles keep the Group alive, but the communicator itself goes now: waits for what
// was issued, bounded by the timeout, then releases NCCL's resources.
NcclCommunicator::~NcclCommunicator() {
  for (auto* lanes : {&send_lanes_, &recv_lanes_}) {
    for (auto& [peer, lane] : *lanes) lane->close();
  }
  group_->close();
}

void NcclCommunicator::add_lane(int peer, bool outgoing, std::shared_ptr<Group> lane) {
  (outgoing ? send_lanes_ : recv_lanes_)[peer] = std::move(lane);
}

void NcclCommunicator::invalid(const std::string& message) const {
  std::string s = group_->prefix();
  s += message;
  throw CommError(s);
}

void NcclCommunicator::check_tensor(const Tensor& t, const char* role) const {
  std::string what = role;
  if (!t && t.numel() != 0) invalid(what + " tensor is empty");
  if (t.numel() != 0 && t.device() != Device::cuda) {
    invalid(what + " tensor is not in CUDA device memory (nccl moves device memory only; use comm: gloo for cpu)");
  }
}

void NcclCommunicator::check_peer(int peer, const char* op) const {
  if (peer < 0 || peer >= size() || peer == rank()) {
    std::string s = op;
    s += ": peer ";
    s += std::to_string(peer);
    s += " is not another group rank";
    invalid(s);
  }
}

std::string NcclCommunicator::next_collective(const char* op, std::int64_t numel, DType dtype) {
  std::string s = group_->prefix();
  s += op;
  s += " #";
  s += std::to_string(++collectives_);
  s += " of ";
  s += sized(numel, dtype);
  return s;
}

std::unique_ptr<CommWork> NcclCommunicator::work(std::shared_ptr<OpState> op) const {
  return std::make_unique<NcclWork>(group_, std::move(op));
}

std::unique_ptr<CommWork> NcclCommunicator::all_reduce(const Tensor& t) {
  check_tensor(t, "all_reduce");
  auto what = next_collective("all_reduce", t.numel(), t.dtype());
  Group::Launch launch;
  if (t.numel() > 0) {
    launch = [t](ncclComm_t c, cudaStream_t s) {
      return ncclAllReduce(t.data(), t.data(), static_cast<std::size_t>(t.numel()), nccl_dtype(t.dtype()), ncclSum,
                           c, s);
    };
  }
  return work(group_->issue(std::move(what), {t}, launch));
}

std::unique_ptr<CommWork> NcclCommunicator::reduce_scatter(const Tensor& out, const Tensor& in) {
  check_tensor(out, "reduce_scatter output");
  check_tensor(in, "reduce_scatter input");
  if (in.dtype() != out.dtype()) invalid("reduce_scatter: input and output dtypes differ");
  if (in.numel() != out.numel() * size()) {
    std::string s = "reduce_scatter: input has ";
    s += std::to_string(in.numel());
    s += " elements, expected ";
    s += std::to_string(size());
    s += " x ";
    s += std::to_string(out.numel());
    invalid(s);
  }
  auto what = next_collective("reduce_scatter", in.numel(), in.dtype());
  Group::Launch launch;
  if (out.numel() > 0) {
    launch = [out, in](ncclComm_t c, cudaStream_t s) {
      return ncclReduceScatter(in.data(), out.data(), static_cast<std::size_t>(out.numel()), nccl_dtype(out.dtype()),
                               ncclSum, c, s);
    };
  }
  return work(group_->issue(std::move(what), {out, in}, launch));
}

std::unique_ptr<CommWork> NcclCommunicator::all_gather(const Tensor& out, const Tensor& in) {
  check_tensor(out, "all_gather output");
  check_tensor(in, "all_gather input");
  if (in.dtype() != out.dtype()) invalid("all_gather: input and output dtypes differ");
  if (out.numel() != in.numel() * size()) {
    std::string s = "all_gather: output has ";
    s += std::to_string(out.numel());
    s += " elements, expected ";
    s += std::to_string(size());
    s += " x ";
    s += std::to_string(in.numel());
    invalid(s);
  }
  auto what = next_collective("all_gather", out.numel(), out.dtype());
  Group::Launch launch;
  if (in.numel() > 0) {
    launch = [out, in](ncclComm_t c, cudaStream_t s) {
      return ncclAllGather(in.data(), out.data(), static_cast<std::size_t>(in.numel()), nccl_dtype(in.dtype()), c, s);
    };
  }
  return work(group_->issue(std::move(what), {out, in}, launch));
}

std::unique_ptr<CommWork> NcclCommunicator::broadcast(const Tensor& t, int root) {
  check_tensor(t, "broadcast");
  if (root < 0 || root >= size()) invalid("broadcast: root " + std::to_string(root) + " is not a group rank");
  auto what = next_collective("broadcast", t.numel(), t.dtype());
  what += " from rank ";
  what += std::to_string(root);
  Group::Launch launch;
  if (t.numel() > 0) {
    launch = [t, root](ncclComm_t c, cudaStream_t s) {
      return ncclBroadcast(t.data(), t.data(), static_cast<std::size_t>(t.numel()), nccl_dtype(t.dtype()), root, c, s);
    };
  }
  return work(group_->issue(std::move(what), {t}, launch));
}

// Point-to-point ops: a send completes only once its peer has posted the matching recv. On
// the group's own stream (a group without lanes) they run in program order with the
// collectives, so two ranks that both send to each other before receiving deadlock (gloo's
// sends do not block; NCCL's do). A group set up for point-to-point has a lane per direction
// and neighbour, each with its own stream: a send waits only for its own receive.
std::unique_ptr<CommWork> NcclCommunicator::send(const Tensor& t, int peer) {
  check_tensor(t, "send");
  check_peer(peer, "send");
  std::string what = group_->prefix();
  what += "send #";
  what += std::to_string(++sends_to_[static_cast<std::size_t>(peer)]);
  what += " of ";
  what += sized(t.numel(), t.dtype());
  what += " to rank ";
  what += std::to_string(peer);
  const auto lane = send_lanes_.find(peer);
  Group& group = lane == send_lanes_.end() ? *group_ : *lane->second;
  const int to = lane == send_lanes_.end() ? peer : 1;  // the receiver is rank 1 of a lane
  Group::Launch launch;
  if (t.numel() > 0) {
    launch = [t, to](ncclComm_t c, cudaStream_t s) {
      return ncclSend(t.data(), static_cast<std::size_t>(t.numel()), nccl_dtype(t.dtype()), to, c, s);
    };
  }
  auto op = group.issue(std::move(what), {t}, launch);
  return std::make_unique<NcclWork>(lane == send_lanes_.end() ? group_ : lane->second, std::move(op));
}

std::unique_ptr<CommWork> NcclCommunicator::recv(const Tensor& t, int peer) {
  check_tensor(t, "recv");
  check_peer(peer, "recv");
  std::string what = group_->prefix();
  what += "recv #";
  what += std::to_string(++recvs_from_[static_cast<std::size_t>(peer)]);
  what += " of ";
  what += sized(t.numel(), t.dtype());
  what += " from rank ";
  what += std::to_string(peer);
  const auto lane = recv_lanes_.find(peer);
  Group& group = lane == recv_lanes_.end() ? *group_ : *lane->second;
  const int from = lane == recv_lanes_.end() ? peer : 0;  // the sender is rank 0 of a lane
  Group::Launch launch;
  if (t.numel() > 0) {
    launch = [t, from](ncclComm_t c, cudaStream_t s) {
      return ncclRecv(t.data(), static_cast<std::size_t>(t.numel()), nccl_dtype(t.dtype()), from, c, s);
    };
  }
  auto op = group.issue(std::move(what), {t}, launch);
  return std::make_unique<NcclWork>(lane == recv_lanes_.end() ? group_ : lane->second, std::move(op));
}

// Synchronous: a sum of one device word, waited for on the host.
void NcclCommunicator::barrier() {
  auto what = next_collective("barrier", 1, DType::i32);
  const Tensor word = barrier_word_;
  work(group_->issue(std::move(what), {word}, [word](ncclComm_t c, cudaStream_t s) {
    return ncclAllReduce(word.data(), word.data(), 1, ncclInt32, ncclSum, c, s);
  }))->wait();
}

}  // namespace trainer::nccl_plugin
