// Out-of-line virtual destructors: they anchor the SDK classes' type information in
// libtrainer, so dynamic_cast works across plugin libraries.
#include "trainer/backend.hpp"
#include "trainer/failure.hpp"
#include "trainer/model.hpp"
#include "trainer/optimizer.hpp"
#include "trainer/plugin.hpp"
#include "trainer/recompute.hpp"

namespace trainer {

Plugin::~Plugin() = default;
FailurePolicy::~FailurePolicy() = default;
BlockActivations::~BlockActivations() = default;

const char* plugin_kind_name(PluginKind kind) {
  switch (kind) {
    case PluginKind::backend: return "backend";
    case PluginKind::comm: return "comm";
    case PluginKind::model: return "model";
    case PluginKind::layout: return "layout";
    case PluginKind::recompute: return "recompute";
    case PluginKind::overlap: return "overlap";
    case PluginKind::failure: return "failure";
    case PluginKind::optimizer: return "optimizer";
    case PluginKind::schedule: return "schedule";
  }
  return "unknown";
}

}  // namespace trainer

#include "trainer/comm.hpp"
#include "trainer/store.hpp"

namespace trainer {
Store::~Store() = default;
CommWork::~CommWork() = default;
Communicator::~Communicator() = default;
}  // namespace trainer
