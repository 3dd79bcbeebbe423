// recompute: full — a checkpointed block keeps only its input and reruns its forward
// before its backward. `every: k` checkpoints blocks 0, k, 2k, ... and leaves the others
// whole, trading memory for compute in steps of one block.
#include "trainer/recompute.hpp"

namespace {

class FullRecompute final : public trainer::RecomputePolicy {
 public:
  explicit FullRecompute(int every) : every_(every) {}
  std::vector<bool> keep(int block, int, const std::vector<trainer::ActivationSpec>& acts) const override {
    const bool checkpointed = block % every_ == 0;
    return std::vector<bool>(acts.size(), !checkpointed);
  }

 private:
  int every_;
};

std::vector<trainer::KeySpec> keys() {
  return {{"every", trainer::KeyType::integer, "1", "checkpoint every k-th block (1 = all blocks)", false, 1, {}, {}}};
}

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  return std::make_unique<FullRecompute>(static_cast<int>(ctx.config.get_int("every")));
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::recompute, "full",
                                            "0.1.0", "keep only block inputs; recompute each block before its backward",
                                            &create, &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
