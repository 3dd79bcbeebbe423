// Generator: autoregressive sampling from a model whose parameters are bound. Each new
// token runs the model forward over the last seq_len() tokens (a sliding window once the
// text outgrows the context) and draws from the last position's logits. No KV cache: the
// models sampled here are small, and a full forward keeps the model SDK to one extra call
// (Model::head_logits).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "engine/memory_meter.hpp"
#include "trainer/backend.hpp"
#include "trainer/model.hpp"

namespace trainer::generate {

struct SamplingOptions {
  double temperature = 1.0;  // <= 0: greedy (the most likely token; the lowest id on ties)
  int top_k = 0;             // 0: the whole vocabulary
  std::uint64_t seed = 0;    // the same seed, model and prompt give the same tokens
};

// Picks a token from one position's logits; `u` in [0, 1) is the random draw (unused when
// greedy). Top-k keeps the k largest logits (ties to the lower id).
std::int32_t pick_token(std::span<const float> logits, const SamplingOptions& options, double u);

class Generator {
 public:
  Generator(Backend& backend, Model& model);

  // Logits (vocab_size() of them) for the token after `context`, of which only the last
  // seq_len() tokens are seen.
  std::vector<float> next_logits(std::span<const std::int32_t> context);
  // `count` tokens continuing `prompt` (the prompt itself is not included).
  std::vector<std::int32_t> generate(const std::vector<std::int32_t>& prompt, int count,
                                     const SamplingOptions& options);

 private:
  Backend& backend_;
  Model& model_;
  MemoryMeter saved_, workspace_;
};

}  // namespace trainer::generate
