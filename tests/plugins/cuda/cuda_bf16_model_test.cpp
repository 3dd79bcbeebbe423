// Mixed precision end to end on the cuda backend: 50 AdamW steps of a small gpt with bf16
// activations and compute copies (f32 master weights, gradients and optimizer state) track
// the f32 run's loss curve within 2% at every step, on the same batches and masks. Also: the
// bf16 run is deterministic (two runs, the same losses bit for bit).
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "cuda_test_helpers.hpp"
#include "engine/forward_backward.hpp"
#include "support/plugins.hpp"
#include "trainer/layout.hpp"
#include "trainer/model.hpp"
#include "trainer/optimizer.hpp"
#include "trainer/parameters.hpp"
#include "trainer/recompute.hpp"

using namespace trainer;
using test::make_plugin;

namespace {

// A learnable stream: next = (7 * prev + 3 + r) mod V with r uniform in [0, 4), so the loss
// falls from ln V towards ln 4 within a few dozen steps.
void batch(std::int64_t step, int n, int V, std::vector<std::int32_t>& x, std::vector<std::int32_t>& y) {
  std::mt19937 rng(static_cast<unsigned>(1000 + step));
  std::int32_t t = static_cast<std::int32_t>(rng() % static_cast<unsigned>(V));
  for (int i = 0; i < n; ++i) {
    x[static_cast<std::size_t>(i)] = t;
    t = static_cast<std::int32_t>((7 * t + 3 + static_cast<int>(rng() % 4)) % V);
    y[static_cast<std::size_t>(i)] = t;
  }
}

// written: trust the bf16 copies the optimizer wrote in its step (as the trainer does for a
// replicated layout) instead of refreshing them from the f32 values.
std::vector<double> losses(Backend& backend, DType precision, int steps, bool written = false) {
  const std::map<std::string, std::string> cfg{{"n_layer", "2"}, {"n_head", "4"},    {"d_model", "128"},
                                               {"vocab", "256"}, {"seq_len", "64"},  {"dropout", "0.1"},
                                               {"tied_embeddings", "true"}};
  auto model = make_plugin<Model>(PluginKind::model, "gpt", cfg, &backend);
  auto policy = make_plugin<RecomputePolicy>(PluginKind::recompute, "none");
  auto layout = make_plugin<Layout>(PluginKind::layout, "replicate");
  auto optimizer = make_plugin<Optimizer>(PluginKind::optimizer, "adamw", {}, &backend);
  ParameterStore params(backend, model->parameters());
  params.initialize(5);
  params.set_compute_dtype(precision);
  model->bind(params);
  layout->setup(LayoutContext{backend, params, nullptr, {}});
  optimizer->init(backend, layout->optimizer_targets());
  const BatchShape shape{8, 64};
  ForwardBackward pass(backend, *model, *policy, *layout, shape);
  if (precision != DType::f32) pass.use_compute_copies(params);
  const int n = shape.B * shape.T;
  std::vector<std::int32_t> x(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n));
  Tensor tokens = backend.allocate({shape.B, shape.T}, DType::i32);
  Tensor targets = backend.allocate({shape.B, shape.T}, DType::i32);
  std::vector<double> out;
  for (int s = 0; s < steps; ++s) {
    batch(s, n, 256, x, y);
    backend.copy_from_host(tokens, x.data());
    backend.copy_from_host(targets, y.data());
    layout->zero_grads();
    const double loss = pass.train(StepContext{3, s, 0, true}, tokens, targets, 1.0f / static_cast<float>(n), true);
    out.push_back(loss / n);
    optimizer->step(2e-3f, s + 1);
    layout->after_optimizer_step();
    params.invalidate_compute(std::vector<bool>(written ? params.units().size() : 0, true));
  }
  return out;
}

}  // namespace

TEST_CASE("gpt in bf16 on cuda tracks the f32 loss curve within 2% for 50 steps", "[cuda][bf16][model]") {
  Backend* g = cuda_test::gpu();
  if (!g) return;
  const auto f32 = losses(*g, DType::f32, 50);
  const auto bf16 = losses(*g, DType::bf16, 50);
  const auto again = losses(*g, DType::bf16, 50);
  const auto written = losses(*g, DType::bf16, 50, true);
  REQUIRE(f32.size() == 50);
  double worst = 0;
  for (std::size_t s = 0; s < f32.size(); ++s) {
    const double rel = std::fabs(bf16[s] - f32[s]) / f32[s];
    worst = std::max(worst, rel);
    INFO("step " << s << ": f32 " << f32[s] << " bf16 " << bf16[s] << " (relative " << rel << ")");
    CHECK(std::isfinite(bf16[s]));
    CHECK(rel <= 0.02);
    CHECK(bf16[s] == again[s]);
    INFO("the copies AdamW wrote differ from the refreshed ones");
    CHECK(written[s] == bf16[s]);
  }
  // It must have learned something, or tracking a flat curve would prove little.
  CHECK(f32.back() < 0.6 * f32.front());
  std::printf("bf16 vs f32 loss, 50 steps: first %.4f / %.4f, last %.4f / %.4f, worst relative gap %.4f\n", bf16.front(),
              f32.front(), bf16.back(), f32.back(), worst);
  cuda_test::record("model: bf16 loss curve vs f32 (50 steps)", worst, false);
}
