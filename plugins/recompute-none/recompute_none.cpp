// recompute: none — every activation stays from forward to backward (fastest, most memory).
#include "trainer/recompute.hpp"

namespace {

class KeepEverything final : public trainer::RecomputePolicy {
 public:
  std::vector<bool> keep(int, int, const std::vector<trainer::ActivationSpec>& acts) const override {
    return std::vector<bool>(acts.size(), true);
  }
};

std::vector<trainer::KeySpec> keys() { return {}; }
std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext&) {
  return std::make_unique<KeepEverything>();
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::recompute, "none",
                                            "0.1.0", "keep every activation (no recompute)", &create, &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
