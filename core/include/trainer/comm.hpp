// Collective communication between ranks: a Communicator per process group (one per mesh
// axis), made by a comm plugin (gloo on CPU, nccl on GPU). Operations are issued in program
// order and run asynchronously; wait() on the handle blocks and rethrows failures.
// Device tensors (nccl): an operation starts after the work already issued to the backend's
// stream, and after wait() the backend's later work sees its result.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/plugin.hpp"
#include "trainer/store.hpp"
#include "trainer/tensor.hpp"

namespace trainer {

// Raised by a failed or timed-out operation. The message names the group, the operation
// and its sequence number within the group, so that a hang can be traced to one call.
class CommError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CommWork {
 public:
  virtual ~CommWork();
  virtual void wait() = 0;   // blocks until done; throws CommError on failure or timeout
  // Orders the backend's later work after this operation, without blocking the host where the
  // plugin can: a device plugin makes its backend's stream wait for the operation, so the
  // GPU queue is not drained at every wait. Until ready() the operation may still fail or
  // hang; the core's watchdog keeps watching it, and busy/exposed seconds are valid once
  // ready() is true. A failure also surfaces at the group's next operation. The default
  // waits on the host.
  virtual void wait_on_device() { wait(); }
  virtual bool ready() = 0;  // done (successfully or not), without blocking
  // Seconds the operation itself took on the communication thread (valid after wait()):
  // with the caller's waiting time this separates total from exposed communication.
  virtual double busy_seconds() const = 0;
  // Seconds the caller's compute was held up by this operation, when the plugin measures it
  // itself (valid after wait()); negative when it does not, and the caller's own waiting
  // time is the measure. A device comm plugin needs it: its wait() also waits for compute
  // queued before the operation, which the caller's clock would count as communication.
  virtual double exposed_seconds() const { return -1.0; }
};

struct GroupSpec {
  std::string name;               // e.g. "dp", "tp.3": unique per job, used for store keys
  std::vector<int> ranks;         // global ranks of the members, in group-rank order
  int global_rank = 0;            // this process
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  // The group will carry send/recv between neighbouring group ranks (r and r +- 1, modulo the
  // size: the pipeline's stages), with sends that must not wait for the peer's receive. A
  // plugin whose sends block on the receive (nccl) sets up one channel per direction.
  bool point_to_point = false;
};

class Communicator {
 public:
  virtual ~Communicator();
  virtual int rank() const = 0;  // within the group
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;

  // Sums `t` over the group, in place; every rank gets bitwise the same result.
  virtual std::unique_ptr<CommWork> all_reduce(const Tensor& t) = 0;
  // `in` holds size() equal chunks of out.numel(); rank r receives the sum of chunk r.
  virtual std::unique_ptr<CommWork> reduce_scatter(const Tensor& out, const Tensor& in) = 0;
  // `out` holds size() chunks of in.numel(); chunk r is rank r's `in`.
  virtual std::unique_ptr<CommWork> all_gather(const Tensor& out, const Tensor& in) = 0;
  virtual std::unique_ptr<CommWork> broadcast(const Tensor& t, int root) = 0;
  virtual std::unique_ptr<CommWork> send(const Tensor& t, int peer) = 0;  // peer: group rank
  virtual std::unique_ptr<CommWork> recv(const Tensor& t, int peer) = 0;
  virtual void barrier() = 0;
};

class CommBackend : public Plugin {
 public:
  // Collective over the members of `spec`: every member calls it with the same spec.
  virtual std::unique_ptr<Communicator> connect(const GroupSpec& spec, Store& store) = 0;
};

}  // namespace trainer
