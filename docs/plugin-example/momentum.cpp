// optimizer: momentum — SGD with heavy-ball momentum, written against the public SDK only.
//   buf = g + mu * buf;  p = (1 - lr * wd) * p - lr * buf
// It composes backend ops (axpby), so it runs on every backend without code of its own.
#include <trainer/optimizer.hpp>

namespace {

class Momentum final : public trainer::Optimizer {
 public:
  Momentum(float mu, float wd) : mu_(mu), wd_(wd) {}

  void init(trainer::Backend& backend, const std::vector<trainer::OptimizerTarget>& targets) override {
    backend_ = &backend;
    targets_ = targets;
    for (const auto& t : targets_) {
      buffers_.push_back(backend.allocate(t.value.shape(), trainer::DType::f32));
      backend.fill_zero(buffers_.back());
    }
  }

  void step(float lr, std::int64_t) override {
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      const auto& t = targets_[i];
      const auto n = t.value.numel();
      backend_->axpby(buffers_[i], 1.0f, t.grad, mu_, n);
      backend_->axpby(t.value, -lr, buffers_[i], 1.0f - lr * (t.weight_decay ? wd_ : 0.0f), n);
    }
  }

  std::size_t state_bytes() const override {
    std::size_t b = 0;
    for (const auto& t : buffers_) b += t.bytes();
    return b;
  }

  std::vector<std::pair<std::string, trainer::Tensor>> state() const override {
    std::vector<std::pair<std::string, trainer::Tensor>> s;
    for (std::size_t i = 0; i < targets_.size(); ++i) s.emplace_back(targets_[i].name + ".momentum", buffers_[i]);
    return s;
  }

 private:
  float mu_, wd_;
  trainer::Backend* backend_ = nullptr;
  std::vector<trainer::OptimizerTarget> targets_;
  std::vector<trainer::Tensor> buffers_;
};

std::vector<trainer::KeySpec> keys() {
  using trainer::KeyType;
  return {
      {"momentum", KeyType::number, "0.9", "heavy-ball coefficient", false, 0.0, 0.9999, {}},
      {"weight_decay", KeyType::number, "0.0", "decoupled weight decay", false, 0.0, 10.0, {}},
  };
}

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  return std::make_unique<Momentum>(static_cast<float>(ctx.config.get_double("momentum")),
                                    static_cast<float>(ctx.config.get_double("weight_decay")));
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::optimizer, "momentum", "1.0.0",
                                            "SGD with heavy-ball momentum (out-of-tree example)", &create, &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
