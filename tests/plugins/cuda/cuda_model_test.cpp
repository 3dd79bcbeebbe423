// The whole gpt model on the cuda backend against the cpu backend: same parameters (same
// seed), one ForwardBackward training pass with dropout; loss and every parameter gradient
// within 1e-4 relative, and the gpu pass deterministic (two passes bitwise equal).
#include <catch2/catch.hpp>
#include <random>

#include "cuda_test_helpers.hpp"
#include "engine/forward_backward.hpp"
#include "support/plugins.hpp"
#include "trainer/layout.hpp"
#include "trainer/model.hpp"
#include "trainer/parameters.hpp"
#include "trainer/recompute.hpp"

using namespace trainer;
using test::make_plugin;

namespace {

struct Result {
  double loss = 0.0;
  std::vector<float> grads;
  std::vector<float> grads_again;
  double loss_again = 0.0;
};

Result train_once(Backend& backend, const std::map<std::string, std::string>& cfg, BatchShape shape) {
  auto model = make_plugin<Model>(PluginKind::model, "gpt", cfg, &backend);
  auto policy = make_plugin<RecomputePolicy>(PluginKind::recompute, "none");
  auto layout = make_plugin<Layout>(PluginKind::layout, "replicate");
  ParameterStore params(backend, model->parameters());
  params.initialize(7);
  model->bind(params);
  layout->setup(LayoutContext{backend, params, nullptr, {}});
  const int n = shape.B * shape.T;
  std::mt19937 rng(3);
  std::vector<std::int32_t> t(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n));
  for (auto& x : t) x = static_cast<std::int32_t>(rng() % static_cast<unsigned>(model->vocab_size()));
  for (auto& x : y) x = static_cast<std::int32_t>(rng() % static_cast<unsigned>(model->vocab_size()));
  y[5] = -1;  // an ignored target
  Tensor tokens = backend.allocate({shape.B, shape.T}, DType::i32);
  Tensor targets = backend.allocate({shape.B, shape.T}, DType::i32);
  backend.copy_from_host(tokens, t.data());
  backend.copy_from_host(targets, y.data());
  ForwardBackward pass(backend, *model, *policy, *layout, shape);
  const StepContext ctx{11, 3, 0, true};
  const float dloss = 1.0f / static_cast<float>(n);
  Result r;
  params.zero_grads();
  r.loss = pass.train(ctx, tokens, targets, dloss, true);
  r.grads = params.grads_to_host();
  params.zero_grads();
  r.loss_again = pass.train(ctx, tokens, targets, dloss, true);
  r.grads_again = params.grads_to_host();
  return r;
}

}  // namespace

TEST_CASE("gpt trains the same on cuda as on cpu: loss and every gradient", "[cuda][model]") {
  Backend* g = cuda_test::gpu();
  if (!g) return;
  const auto tied = GENERATE(std::string("true"), std::string("false"));
  const std::map<std::string, std::string> cfg{{"n_layer", "2"},  {"n_head", "4"},     {"d_model", "64"},
                                               {"vocab", "101"},  {"seq_len", "32"},   {"dropout", "0.1"},
                                               {"tied_embeddings", tied}};
  const BatchShape shape{4, 32};
  const Result want = train_once(cuda_test::cpu(), cfg, shape);
  const Result got = train_once(*g, cfg, shape);
  INFO("tied " << tied << ": loss cpu " << want.loss << " gpu " << got.loss);
  const double loss_err = std::fabs(got.loss - want.loss) / std::fabs(want.loss);
  cuda_test::record("model: loss", loss_err, got.loss == want.loss);
  CHECK(loss_err <= 1e-4);
  CHECK(got.loss == got.loss_again);
  CHECK(cuda_test::bitwise_equal(got.grads, got.grads_again));

  // Every parameter's gradient on its own, so a small tensor is not hidden by a big one.
  auto model = make_plugin<Model>(PluginKind::model, "gpt", cfg, &cuda_test::cpu());
  ParameterStore layout_only(cuda_test::cpu(), model->parameters());
  for (std::size_t p = 0; p < layout_only.size(); ++p) {
    const auto at = static_cast<std::size_t>(layout_only.offset(p));
    const auto n = static_cast<std::size_t>(layout_only.value(p).numel());
    const std::vector<float> a(got.grads.begin() + static_cast<std::ptrdiff_t>(at),
                               got.grads.begin() + static_cast<std::ptrdiff_t>(at + n));
    const std::vector<float> b(want.grads.begin() + static_cast<std::ptrdiff_t>(at),
                               want.grads.begin() + static_cast<std::ptrdiff_t>(at + n));
    const double err = cuda_test::relative_error(a, b);
    // One table row per parameter kind: blocks folded together (h.0.x, h.1.x -> h.*.x).
    std::string kind = layout_only.spec(p).name;
    if (kind.rfind("h.", 0) == 0) kind = "h.*" + kind.substr(kind.find('.', 2));
    cuda_test::record("model grad: " + kind, err, cuda_test::bitwise_equal(a, b));
    INFO(layout_only.spec(p).name << ": relative error " << err);
    CHECK(err <= 1e-4);
  }
}
