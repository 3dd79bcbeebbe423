// optimizer: adamw — Adam with bias correction and decoupled weight decay (applied only to
// targets marked for decay: matrices and embeddings, not norms or biases).
#include "trainer/optimizer.hpp"

namespace {

class AdamW final : public trainer::Optimizer {
 public:
  AdamW(float beta1, float beta2, float eps, float wd) : beta1_(beta1), beta2_(beta2), eps_(eps), wd_(wd) {}

  void init(trainer::Backend& backend, const std::vector<trainer::OptimizerTarget>& targets) override {
    backend_ = &backend;
    targets_ = targets;
    for (const auto& t : targets_) {
      m_.push_back(backend.allocate(t.value.shape(), trainer::DType::f32));
      v_.push_back(backend.allocate(t.value.shape(), trainer::DType::f32));
      backend.fill_zero(m_.back());
      backend.fill_zero(v_.back());
      many_.push_back({t.value, t.grad, m_.back(), v_.back(), t.weight_decay ? wd_ : 0.0f, t.compute});
    }
  }

  // Every target in one call: one launch on a backend with a multi-tensor kernel (cuda).
  void step(float lr, std::int64_t t) override { backend_->adamw_update_many(many_, lr, beta1_, beta2_, eps_, t); }
  bool writes_compute() const override { return true; }

  std::size_t state_bytes() const override {
    std::size_t b = 0;
    for (const auto& m : m_) b += 2 * m.bytes();
    return b;
  }

  std::vector<std::pair<std::string, trainer::Tensor>> state() const override {
    std::vector<std::pair<std::string, trainer::Tensor>> s;
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      s.emplace_back(targets_[i].name + ".adam_m", m_[i]);
      s.emplace_back(targets_[i].name + ".adam_v", v_[i]);
    }
    return s;
  }

 private:
  float beta1_, beta2_, eps_, wd_;
  trainer::Backend* backend_ = nullptr;
  std::vector<trainer::OptimizerTarget> targets_;
  std::vector<trainer::Tensor> m_, v_;
  std::vector<trainer::AdamWTensors> many_;
};

std::vector<trainer::KeySpec> keys() {
  using trainer::KeyType;
  return {
      {"beta1", KeyType::number, "0.9", "first-moment decay", false, 0.0, 0.999999, {}},
      {"beta2", KeyType::number, "0.95", "second-moment decay", false, 0.0, 0.999999, {}},
      {"eps", KeyType::number, "1e-8", "denominator floor", false, 0.0, 1.0, {}},
      {"weight_decay", KeyType::number, "0.1", "decoupled weight decay on matrices and embeddings", false, 0.0, 10.0, {}},
  };
}

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  const auto& c = ctx.config;
  return std::make_unique<AdamW>(static_cast<float>(c.get_double("beta1")), static_cast<float>(c.get_double("beta2")),
                                 static_cast<float>(c.get_double("eps")),
                                 static_cast<float>(c.get_double("weight_decay")));
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::optimizer, "adamw", "0.1.0",
                                            "AdamW with bias correction and decoupled weight decay", &create, &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
