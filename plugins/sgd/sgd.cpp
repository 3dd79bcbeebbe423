// optimizer: sgd — plain stochastic gradient descent with decoupled weight decay:
// p = (1 - lr*wd) * p - lr * g. Stateless.
#include "trainer/optimizer.hpp"

namespace {

class Sgd final : public trainer::Optimizer {
 public:
  explicit Sgd(float wd) : wd_(wd) {}
  void init(trainer::Backend& backend, const std::vector<trainer::OptimizerTarget>& targets) override {
    backend_ = &backend;
    targets_ = targets;
  }
  void step(float lr, std::int64_t) override {
    for (const auto& t : targets_) {
      const float decay = t.weight_decay ? wd_ : 0.0f;
      backend_->axpby(t.value, -lr, t.grad, 1.0f - lr * decay, t.value.numel());
    }
  }
  std::size_t state_bytes() const override { return 0; }
  std::vector<std::pair<std::string, trainer::Tensor>> state() const override { return {}; }

 private:
  float wd_;
  trainer::Backend* backend_ = nullptr;
  std::vector<trainer::OptimizerTarget> targets_;
};

std::vector<trainer::KeySpec> keys() {
  return {{"weight_decay", trainer::KeyType::number, "0.0", "decoupled weight decay", false, 0.0, 10.0, {}}};
}

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  return std::make_unique<Sgd>(static_cast<float>(ctx.config.get_double("weight_decay")));
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::optimizer, "sgd", "0.1.0",
                                            "stochastic gradient descent with decoupled weight decay", &create, &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
