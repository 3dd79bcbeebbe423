// comm: nccl — collectives between GPUs over NCCL, one process per GPU. connect(): group rank
// 0 makes the NCCL unique id and publishes it in the job's store under a per-connect key;
// every member then joins one non-blocking NCCL communicator for the group (one per mesh
// axis group), on the cuda backend's device, polled so that a missing member is a CommError
// after the timeout rather than a hang.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "nccl_communicator.hpp"
#include "trainer/backend.hpp"
#include "trainer/comm.hpp"
#include "trainer/comm_connect.hpp"

namespace {

using trainer::CommError;
using Clock = std::chrono::steady_clock;

class NcclBackend final : public trainer::CommBackend {
 public:
  NcclBackend(trainer::Backend& backend, std::chrono::milliseconds timeout_cap)
      : backend_(backend), timeout_cap_(timeout_cap) {}

  std::unique_ptr<trainer::Communicator> connect(const trainer::GroupSpec& spec, trainer::Store& store) override {
    const trainer::GroupPlace place = trainer::place_in_group(spec, timeout_cap_, "nccl");
    const int rank = place.rank, size = place.size;
    const auto timeout = place.timeout;
    const std::string& where = place.where;
    const int device = backend_.native_device();
    auto fail = [&](const std::string& why) -> CommError {
      std::string s = where;
      s += ": connect on cuda device ";
      s += std::to_string(device);
      s += " failed: ";
      s += why;
      return CommError(s);
    };
    if (const cudaError_t st = cudaSetDevice(device); st != cudaSuccess) {
      throw fail(std::string("cudaSetDevice: ") + cudaGetErrorString(st));
    }

    const std::string prefix = trainer::connect_prefix(store, "nccl", spec.name, spec.global_rank);
    const ncclComm_t comm = join(store, prefix + "id", size, rank, timeout, fail);
    const auto compute = static_cast<cudaStream_t>(backend_.native_stream());
    auto group = std::make_shared<trainer::nccl_plugin::Group>(spec.name, rank, size, device, compute, comm, timeout);
    auto word = backend_.allocate({1}, trainer::DType::i32);
    backend_.fill_zero(word);
    auto communicator = std::make_unique<trainer::nccl_plugin::NcclCommunicator>(std::move(group), word);
    if (spec.point_to_point && size > 1) {
      // One two-rank communicator per direction between neighbours, each on its own stream:
      // a send then waits only for its own receive, never behind a send the other way (NCCL's
      // sends complete when the peer receives; on one stream, two ranks sending to each other
      // first would deadlock). Joined in one global order, so no two ranks wait on each other.
      for (int from = 0; from < size; ++from) {
        const int next = (from + 1) % size, prev = (from + size - 1) % size;
        for (const int to : {next, prev}) {
          if (to == prev && prev == next) continue;  // two ranks: one neighbour
          if (from != rank && to != rank) continue;
          std::string lane = spec.name;
          lane += ":";
          lane += std::to_string(from);
          lane += ">";
          lane += std::to_string(to);
          const int lane_rank = from == rank ? 0 : 1;
          const ncclComm_t c = join(store, prefix + "lane/" + std::to_string(from) + "-" + std::to_string(to), 2,
                                    lane_rank, timeout, fail);
          auto channel = std::make_shared<trainer::nccl_plugin::Group>(lane, lane_rank, 2, device, compute, c, timeout);
          warm_up(*channel, word);
          communicator->add_lane(from == rank ? to : from, from == rank, std::move(channel));
        }
      }
    }
    return communicator;
  }

 private:
  // NCCL connects a pair of ranks at their first send/recv, and the sender's call waits for
  // the receiver's to do so: one word each way now, while both ends are here, so that later
  // first sends do not wait for the peer's receive.
  static void warm_up(trainer::nccl_plugin::Group& lane, const trainer::Tensor& word) {
    const bool sender = lane.rank == 0;
    auto op = lane.issue(lane.prefix() + "connect", {word}, [word, sender](ncclComm_t c, cudaStream_t s) {
      return sender ? ncclSend(word.data(), 1, ncclInt32, 1, c, s) : ncclRecv(word.data(), 1, ncclInt32, 0, c, s);
    });
    lane.wait(*op);
  }

  // Rank 0 of the communicator makes the NCCL id and publishes it under `key`; every member
  // joins a non-blocking communicator, polled, so a missing member is a timeout, not a hang.
  template <class Fail>
  static ncclComm_t join(trainer::Store& store, const std::string& key, int size, int rank,
                         std::chrono::milliseconds timeout, const Fail& fail) {
    ncclUniqueId id;
    try {
      if (rank == 0) {
        if (const ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
          throw fail(std::string("ncclGetUniqueId: ") + ncclGetErrorString(r));
        }
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(&id);
        store.set(key, std::vector<std::uint8_t>(bytes, bytes + sizeof id));
      } else {
        const auto bytes = store.get(key, timeout);
        if (bytes.size() != sizeof id) {
          throw fail("the NCCL id in the store has " + std::to_string(bytes.size()) + " bytes, expected " +
                     std::to_string(sizeof id) + " (ranks built against different NCCL versions?)");
        }
        std::memcpy(&id, bytes.data(), sizeof id);
      }
    } catch (const trainer::StoreError& e) {
      std::string why = "rank 0 of the communicator did not publish the NCCL id within ";
      why += std::to_string(timeout.count());
      why += " ms (key '";
      why += key;
      why += "'): ";
      why += e.what();
      throw fail(why);
    }
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = nullptr;
    ncclResult_t r = ncclCommInitRankConfig(&comm, size, id, rank, &config);
    const auto deadline = Clock::now() + timeout;
    for (int spins = 0; r == ncclInProgress && comm; ++spins) {
      if (Clock::now() > deadline) {
        ncclCommAbort(comm);
        throw fail("ncclCommInitRankConfig did not finish within " + std::to_string(timeout.count()) +
                   " ms (a member never joined?)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(spins < 100 ? 10 : 1000));
      const ncclResult_t polled = ncclCommGetAsyncError(comm, &r);
      if (polled != ncclSuccess) r = polled;
    }
    if (r != ncclSuccess) {
      std::string why = "ncclCommInitRankConfig: ";
      why += ncclGetErrorString(r);
      const char* last = ncclGetLastError(comm);
      if (last && *last) {
        why += " (";
        why += last;
        why += ")";
      }
      if (comm) ncclCommAbort(comm);
      throw fail(why);
    }
    return comm;
  }

  trainer::Backend& backend_;
  std::chrono::milliseconds timeout_cap_;
};

std::vector<trainer::KeySpec> keys() {
  using trainer::KeyType;
  return {
      {"timeout_s", KeyType::number, "300",
       "upper bound in seconds on every group's timeout: the rendezvous, the communicator's creation and each "
       "wait for an operation fail after it, and the communicator is aborted",
       false, 0.1, {}, {}},
      {"nvls", KeyType::boolean, "false",
       "NVLink SHARP (multicast) collectives; false sets NCCL_NVLS_ENABLE=0 unless the environment sets it "
       "(some shared machines must never use multicast)",
       false, {}, {}, {}},
  };
}

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  if (!ctx.backend || ctx.backend->device() != trainer::Device::cuda || !ctx.backend->native_stream() ||
      ctx.backend->native_device() < 0) {
    std::string s = "comm nccl: needs backend cuda (a device stream to order its collectives with), but the backend is ";
    s += ctx.backend ? ctx.backend->name() : "none";
    s += "; use comm: gloo with backend: cpu";
    throw std::runtime_error(s);
  }
  // Read by NCCL when it initialises, i.e. at the first connect, after this.
  if (!ctx.config.get_bool("nvls")) setenv("NCCL_NVLS_ENABLE", "0", 0);
  const double seconds = ctx.config.get_double("timeout_s");
  const auto cap = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
  return std::make_unique<NcclBackend>(*ctx.backend, cap);
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::comm, "nccl", "0.1.0",
                                            "GPU collectives over NCCL, one process per GPU (needs backend cuda)",
                                            &create, &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
