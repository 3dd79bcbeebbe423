// recompute: selective — keep what took a matrix product to make, drop what is cheap to
// remake from it (layernorm outputs, GELU outputs). Attention is fused and keeps only a
// per-row log-sum-exp, which a model marks as not cheap (remaking it reruns attention), so
// selective never reruns attention. `also_drop` names further activations to drop.
#include <algorithm>

#include "trainer/recompute.hpp"

namespace {

class SelectiveRecompute final : public trainer::RecomputePolicy {
 public:
  explicit SelectiveRecompute(std::vector<std::string> also_drop) : also_drop_(std::move(also_drop)) {}
  std::vector<bool> keep(int, int, const std::vector<trainer::ActivationSpec>& acts) const override {
    std::vector<bool> k;
    for (const auto& a : acts) {
      const bool named = std::find(also_drop_.begin(), also_drop_.end(), a.name) != also_drop_.end();
      k.push_back(!a.cheap && !named);
    }
    return k;
  }

 private:
  std::vector<std::string> also_drop_;
};

std::vector<trainer::KeySpec> keys() {
  return {{"also_drop", trainer::KeyType::string_list, "[]",
           "names of further activations to recompute (see `trainer validate` output of the model)", false,
           {}, {}, {}}};
}

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  std::vector<std::string> drop;
  if (ctx.config.has("also_drop")) drop = ctx.config.at("also_drop").as_string_list();
  return std::make_unique<SelectiveRecompute>(std::move(drop));
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::recompute, "selective",
                                            "0.1.0", "keep matmul outputs; recompute layernorm, GELU",
                                            &create, &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
