// The gpt model: its parameters follow GPT-2's shapes and initialisation, and its explicit
// backward equals finite differences of its forward, dropout included.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "engine/forward_backward.hpp"
#include "support/plugins.hpp"
#include "trainer/layout.hpp"
#include "trainer/model.hpp"
#include "trainer/recompute.hpp"

using namespace trainer;
using test::make_plugin;

namespace {

struct Fixture {
  test::Made<Backend> backend = make_plugin<Backend>(PluginKind::backend, "cpu");
  test::Made<Model> model;
  test::Made<RecomputePolicy> policy = make_plugin<RecomputePolicy>(PluginKind::recompute, "none");
  test::Made<Layout> layout = make_plugin<Layout>(PluginKind::layout, "replicate");
  std::unique_ptr<ParameterStore> params;
  BatchShape shape{2, 8};
  Tensor tokens, targets;

  explicit Fixture(const std::map<std::string, std::string>& cfg) {
    model = make_plugin<Model>(PluginKind::model, "gpt", cfg, backend.object.get());
    params = std::make_unique<ParameterStore>(*backend, model->parameters());
    params->initialize(7);
    model->bind(*params);
    layout->setup(LayoutContext{*backend, *params, nullptr, {}});
    std::mt19937 rng(3);
    const int V = model->vocab_size();
    std::vector<std::int32_t> t(16), y(16);
    for (auto& x : t) x = static_cast<std::int32_t>(rng() % static_cast<unsigned>(V));
    for (auto& x : y) x = static_cast<std::int32_t>(rng() % static_cast<unsigned>(V));
    tokens = backend->allocate({2, 8}, DType::i32);
    targets = backend->allocate({2, 8}, DType::i32);
    backend->copy_from_host(tokens, t.data());
    backend->copy_from_host(targets, y.data());
  }

  void set_values(const std::vector<float>& v) {
    for (std::size_t u = 0; u < params->units().size(); ++u) {
      backend->copy_from_host(params->unit_values(u), v.data() + params->units()[u].offset);
    }
  }

  std::vector<float> host(const Tensor& t) {
    std::vector<float> h(static_cast<std::size_t>(t.numel()));
    backend->copy_to_host(h.data(), t);
    return h;
  }
};

}  // namespace

TEST_CASE("gpt declares GPT-2 parameters with GPT-2 initialisation", "[gpt]") {
  Fixture f({{"n_layer", "2"}, {"n_head", "2"}, {"d_model", "16"}, {"vocab", "32"}, {"seq_len", "8"}});
  const auto& specs = f.params->specs();
  // wte, wpe, 12 per block, lnf.w, lnf.b (tied head: no lm_head)
  CHECK(specs.size() == 2 + 12 * 2 + 2);
  CHECK(f.params->numel() == 32 * 16 + 8 * 16 + 2 * (4 * 16 + 3 * 16 * 16 + 3 * 16 + 16 * 16 + 16 + 8 * 16 * 16 + 4 * 16 + 16) + 2 * 16);
  const auto qkv = f.host(f.params->value(*f.params->find("h.0.attn.qkv.w")));
  double var = 0;
  for (float v : qkv) var += static_cast<double>(v) * v;
  CHECK(std::sqrt(var / static_cast<double>(qkv.size())) == Approx(0.02).epsilon(0.15));
  const auto proj = f.host(f.params->value(*f.params->find("h.1.mlp.proj.w")));
  var = 0;
  for (float v : proj) var += static_cast<double>(v) * v;
  CHECK(std::sqrt(var / static_cast<double>(proj.size())) == Approx(0.02 / std::sqrt(4.0)).epsilon(0.15));
  for (float v : f.host(f.params->value(*f.params->find("h.0.ln1.w")))) CHECK(v == 1.0f);
  for (float v : f.host(f.params->value(*f.params->find("h.0.attn.qkv.b")))) CHECK(v == 0.0f);
  CHECK(f.params->spec(*f.params->find("h.0.attn.qkv.w")).weight_decay);
  CHECK_FALSE(f.params->spec(*f.params->find("h.0.ln1.b")).weight_decay);
}

TEST_CASE("an untied head adds its own matrix", "[gpt]") {
  Fixture f({{"n_layer", "1"}, {"n_head", "2"}, {"d_model", "16"}, {"vocab", "32"}, {"seq_len", "8"},
             {"tied_embeddings", "false"}});
  CHECK(f.params->find("lm_head.w").has_value());
}

TEST_CASE("n_head must divide d_model, and the error points at n_head", "[gpt]") {
  try {
    make_plugin<Model>(PluginKind::model, "gpt", {{"n_head", "3"}, {"d_model", "16"}},
                       make_plugin<Backend>(PluginKind::backend, "cpu").object.get());
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("n_head 3 does not divide d_model 16"));
  }
}

TEST_CASE("gpt backward equals finite differences of the loss", "[gpt]") {
  const auto dropout = GENERATE(std::string("0.0"), std::string("0.2"));
  const auto tied = GENERATE(std::string("true"), std::string("false"));
  INFO("dropout " << dropout << ", tied " << tied);
  Fixture f({{"n_layer", "2"}, {"n_head", "2"}, {"d_model", "16"}, {"vocab", "32"}, {"seq_len", "8"},
             {"dropout", dropout}, {"tied_embeddings", tied}});
  ForwardBackward pass(*f.backend, *f.model, *f.policy, *f.layout, f.shape);
  const StepContext ctx{11, 3, 0, true};  // dropout masks are fixed by (seed, step, micro)
  const float dloss = 1.0f / 16.0f;

  f.params->zero_grads();
  pass.train(ctx, f.tokens, f.targets, dloss, true);
  const auto grads = f.params->grads_to_host();
  auto values = f.params->values_to_host();

  auto loss_at = [&](std::size_t i, float delta) {
    auto v = values;
    v[i] += delta;
    f.set_values(v);
    return pass.train(ctx, f.tokens, f.targets, dloss, true) * dloss;  // grads accumulate; unused here
  };
  std::mt19937 rng(5);
  int checked = 0, bad = 0;
  // Every parameter tensor, several coordinates each.
  for (std::size_t p = 0; p < f.params->size(); ++p) {
    const auto n = static_cast<std::size_t>(f.params->value(p).numel());
    for (int k = 0; k < 4; ++k) {
      const std::size_t i = static_cast<std::size_t>(f.params->offset(p)) + rng() % n;
      const float h = 2e-3f;
      const double fd = (loss_at(i, h) - loss_at(i, -h)) / (2.0 * h);
      const double g = grads[i];
      ++checked;
      if (std::fabs(fd - g) > 2e-2 * std::max(std::fabs(fd), std::fabs(g)) + 3e-4) {
        ++bad;
        WARN(f.params->spec(p).name << "[" << i - static_cast<std::size_t>(f.params->offset(p)) << "]: analytic " << g
                                    << " vs finite difference " << fd);
      }
    }
  }
  f.set_values(values);
  CHECK(checked > 100);
  CHECK(bad == 0);
}

TEST_CASE("evaluation is deterministic and ignores dropout", "[gpt]") {
  Fixture f({{"n_layer", "2"}, {"n_head", "2"}, {"d_model", "16"}, {"vocab", "32"}, {"seq_len", "8"},
             {"dropout", "0.5"}});
  ForwardBackward pass(*f.backend, *f.model, *f.policy, *f.layout, f.shape);
  const double a = pass.evaluate(StepContext{1, 0, 0, false}, f.tokens, f.targets);
  const double b = pass.evaluate(StepContext{2, 9, 1, false}, f.tokens, f.targets);
  CHECK(a == b);
  // At initialisation the loss is close to log(vocab) per token.
  CHECK(a / 16.0 == Approx(std::log(32.0)).epsilon(0.05));
}

TEST_CASE("the loss summed on the device equals the host's sum", "[gpt]") {
  Fixture f({{"n_layer", "2"}, {"n_head", "2"}, {"d_model", "16"}, {"vocab", "32"}, {"seq_len", "8"},
             {"dropout", "0.1"}});
  ForwardBackward pass(*f.backend, *f.model, *f.policy, *f.layout, f.shape);
  const StepContext ctx{11, 3, 0, true};
  const double host = pass.train(ctx, f.tokens, f.targets, 1.0f / 16.0f, true);  // read back at once
  // Two micro-batches added on the device, with the engine's loss scale, read once.
  Tensor sum = f.backend->allocate({1}, DType::f64);
  f.backend->fill_zero(sum);
  pass.train(ctx, f.tokens, f.targets, 1.0f / 16.0f, false, sum, 1.0);
  pass.train(ctx, f.tokens, f.targets, 1.0f / 16.0f, true, sum, 3.0);
  double device = 0;
  f.backend->copy_to_host(&device, sum);
  CHECK(device == host + 3.0 * host);  // the cpu adds rows in the host's order: the same bits
  Tensor eval = f.backend->allocate({1}, DType::f64);
  f.backend->fill_zero(eval);
  pass.evaluate(StepContext{1, 0, 0, false}, f.tokens, f.targets, eval);
  double evaluated = 0;
  f.backend->copy_to_host(&evaluated, eval);
  CHECK(evaluated == pass.evaluate(StepContext{1, 0, 0, false}, f.tokens, f.targets));
}
