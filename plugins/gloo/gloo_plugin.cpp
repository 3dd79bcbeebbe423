// comm: gloo — CPU collectives over Gloo's TCP transport. connect() rendezvous through the
// job's store, then every group gets its own gloo context (full mesh of TCP pairs) and a
// GlooCommunicator that runs its ops on a worker thread.
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gloo/rendezvous/context.h>
#include <gloo/transport/tcp/device.h>

#include "gloo_communicator.hpp"
#include "gloo_store.hpp"
#include "trainer/comm.hpp"
#include "trainer/comm_connect.hpp"

namespace {

using trainer::CommError;

class GlooBackend final : public trainer::CommBackend {
 public:
  GlooBackend(std::string hostname, std::chrono::milliseconds timeout_cap)
      : hostname_(std::move(hostname)), timeout_cap_(timeout_cap) {}

  std::unique_ptr<trainer::Communicator> connect(const trainer::GroupSpec& spec, trainer::Store& store) override {
    const trainer::GroupPlace place = trainer::place_in_group(spec, timeout_cap_, "gloo");
    const int rank = place.rank, size = place.size;
    const auto timeout = place.timeout;
    std::string where = place.where;
    try {
      trainer::gloo_plugin::StoreAdapter adapter(
          store, trainer::connect_prefix(store, "gloo", spec.name, spec.global_rank), timeout);
      gloo::transport::tcp::attr attr;
      attr.hostname = hostname_;
      auto device = gloo::transport::tcp::CreateDevice(attr);
      auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
      context->setTimeout(timeout);
      context->connectFullMesh(adapter, device);
      return std::make_unique<trainer::gloo_plugin::GlooCommunicator>(spec.name, std::move(context), timeout);
    } catch (const CommError&) {
      throw;
    } catch (const std::exception& e) {
      where += ": connect over ";
      where += hostname_;
      where += " (timeout ";
      where += std::to_string(timeout.count());
      where += " ms) failed: ";
      where += e.what();
      throw CommError(where);
    }
  }

 private:
  std::string hostname_;
  std::chrono::milliseconds timeout_cap_;
};

std::vector<trainer::KeySpec> keys() {
  using trainer::KeyType;
  return {
      {"hostname", KeyType::string, "127.0.0.1",
       "address of the interface the TCP pairs bind to; multi-node runs set it to this node's address "
       "(reachable from the other nodes)",
       false, {}, {}, {}},
      {"timeout_s", KeyType::number, "300",
       "upper bound in seconds on every group's timeout: the rendezvous and each operation fail after it",
       false, 0.1, {}, {}},
  };
}

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  const double seconds = ctx.config.get_double("timeout_s");
  const auto cap = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
  return std::make_unique<GlooBackend>(ctx.config.get_string("hostname"), cap);
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::comm, "gloo", "0.1.0",
                                            "CPU collectives over Gloo's TCP transport (ring all-reduce)", &create,
                                            &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
