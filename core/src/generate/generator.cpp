#include "generate/generator.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "data/portable_random.hpp"
#include "engine/activation_store.hpp"

namespace trainer::generate {

std::int32_t pick_token(std::span<const float> logits, const SamplingOptions& options, double u) {
  if (logits.empty()) throw std::invalid_argument("pick_token: no logits");
  std::vector<std::int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  // Descending logit, ascending id on ties: a total order, so every platform agrees.
  const auto before = [&](std::int32_t a, std::int32_t b) {
    return logits[static_cast<std::size_t>(a)] > logits[static_cast<std::size_t>(b)] ||
           (logits[static_cast<std::size_t>(a)] == logits[static_cast<std::size_t>(b)] && a < b);
  };
  if (options.temperature <= 0) return *std::min_element(order.begin(), order.end(), before);
  std::size_t k = order.size();
  if (options.top_k > 0) k = std::min(k, static_cast<std::size_t>(options.top_k));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), before);
  order.resize(k);
  const double top = logits[static_cast<std::size_t>(order[0])];
  std::vector<double> weight(k);
  double total = 0;
  for (std::size_t i = 0; i < k; ++i) {
    weight[i] = std::exp((logits[static_cast<std::size_t>(order[i])] - top) / options.temperature);
    total += weight[i];
  }
  double acc = 0;
  for (std::size_t i = 0; i < k; ++i) {
    acc += weight[i] / total;
    if (u < acc) return order[i];
  }
  return order[k - 1];  // u within rounding of 1
}

Generator::Generator(Backend& backend, Model& model) : backend_(backend), model_(model) {}

std::vector<float> Generator::next_logits(std::span<const std::int32_t> context) {
  if (context.empty()) throw std::invalid_argument("Generator: an empty context has no next token");
  const auto window = static_cast<std::size_t>(model_.seq_len());
  if (context.size() > window) context = context.subspan(context.size() - window);
  const BatchShape shape{1, static_cast<int>(context.size())};
  const StepContext ctx{0, 0, 0, false};  // no dropout
  Tensor tokens = backend_.allocate({1, shape.T}, DType::i32);
  backend_.copy_from_host(tokens, context.data());
  Tensor x = backend_.allocate(model_.residual_shape(shape), DType::f32);
  Tensor y = backend_.allocate(model_.residual_shape(shape), DType::f32);
  BlockActivationStore edge(backend_, {}, saved_, workspace_);
  edge.begin_pass(false);
  model_.embed_forward(ctx, shape, tokens, x, edge);
  edge.end_pass();
  BlockActivationStore acts(backend_, model_.block_activations(shape), saved_, workspace_);
  for (int b = 0; b < model_.num_blocks(); ++b) {
    acts.begin_pass(false);
    model_.block_forward(b, ctx, shape, x, y, acts);
    acts.release_all();
    std::swap(x, y);
  }
  const int V = model_.vocab_size();
  Tensor logits = backend_.allocate({1, shape.T, V}, DType::f32);
  edge.begin_pass(false);
  model_.head_logits(ctx, shape, x, logits, edge);
  edge.end_pass();
  std::vector<float> all(static_cast<std::size_t>(shape.T) * static_cast<std::size_t>(V));
  backend_.copy_to_host(all.data(), logits);
  return std::vector<float>(all.end() - V, all.end());
}

std::vector<std::int32_t> Generator::generate(const std::vector<std::int32_t>& prompt, int count,
                                              const SamplingOptions& options) {
  data::Engine rng(options.seed);
  std::vector<std::int32_t> text = prompt;
  std::vector<std::int32_t> out;
  for (int i = 0; i < count; ++i) {
    const std::vector<float> logits = next_logits(text);
    const double u = data::uniform01(rng);  // drawn every token, greedy or not
    const std::int32_t t = pick_token(logits, options, u);
    text.push_back(t);
    out.push_back(t);
  }
  return out;
}

}  // namespace trainer::generate
