#include "data/sampler.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "trainer/rng.hpp"

namespace trainer::data {
namespace {

// Salt for the sampler's key so data positions are not correlated with other users of
// the run seed (dropout masks use rng_bits with the seed as given).
constexpr std::uint64_t kSamplerSalt = 0x6461'7461'5f73'616dull;  // "data_sam"

void check_shard(const TokenShard& shard, int seq_len, const char* who) {
  if (seq_len < 1) throw std::invalid_argument(fmt::format("{}: seq_len must be >= 1, got {}", who, seq_len));
  if (shard.size() < static_cast<std::size_t>(seq_len) + 1) {
    throw std::invalid_argument(fmt::format(
        "{}: token shard {} holds {} tokens, too few for one window of seq_len + 1 = {}", who,
        shard.path().string(), shard.size(), seq_len + 1));
  }
}

void check_spans(std::size_t need, std::span<std::int32_t> inputs, std::span<std::int32_t> targets,
                 const char* who) {
  if (inputs.size() != need || targets.size() != need) {
    throw std::invalid_argument(fmt::format("{}: inputs/targets hold {}/{} values, expected {}", who,
                                            inputs.size(), targets.size(), need));
  }
}

void copy_window(const TokenShard& shard, std::int64_t start, int seq_len, std::int32_t* inputs,
                 std::int32_t* targets) {
  const std::uint16_t* src = shard.data() + start;
  for (int t = 0; t < seq_len; ++t) {
    inputs[t] = src[t];
    targets[t] = src[t + 1];
  }
}

}  // namespace

BatchSampler::BatchSampler(const TokenShard& shard, int seq_len, std::uint64_t seed)
    : shard_(&shard), seq_len_(seq_len), seed_(seed), start_count_(0) {
  check_shard(shard, seq_len, "BatchSampler");
  // Every start with start + seq_len + 1 <= size; the modulus is >= 1 by the check above.
  start_count_ = static_cast<std::int64_t>(shard.size()) - seq_len;
}

std::int64_t BatchSampler::window_start(std::int64_t step, std::int64_t global_index) const {
  if (step < 0 || global_index < 0) {
    throw std::invalid_argument(fmt::format("BatchSampler: negative step {} or index {}", step, global_index));
  }
  const std::uint64_t h = rng_bits(RngKey{seed_ ^ kSamplerSalt, static_cast<std::uint64_t>(step)},
                                   static_cast<std::uint64_t>(global_index));
  // Modulo bias is below start_count / 2^64 < 2^-32: negligible.
  return static_cast<std::int64_t>(h % static_cast<std::uint64_t>(start_count_));
}

void BatchSampler::sample(std::int64_t step, std::int64_t global_index, std::span<std::int32_t> inputs,
                          std::span<std::int32_t> targets) const {
  check_spans(static_cast<std::size_t>(seq_len_), inputs, targets, "BatchSampler::sample");
  copy_window(*shard_, window_start(step, global_index), seq_len_, inputs.data(), targets.data());
}

void BatchSampler::fill_micro_batch(std::int64_t step, std::int64_t first_global_index, int batch,
                                    std::span<std::int32_t> inputs, std::span<std::int32_t> targets) const {
  if (batch < 0) throw std::invalid_argument(fmt::format("BatchSampler: negative batch {}", batch));
  const auto T = static_cast<std::size_t>(seq_len_);
  check_spans(static_cast<std::size_t>(batch) * T, inputs, targets, "BatchSampler::fill_micro_batch");
  for (int b = 0; b < batch; ++b) {
    const std::size_t row = static_cast<std::size_t>(b) * T;
    copy_window(*shard_, window_start(step, first_global_index + b), seq_len_, inputs.data() + row,
                targets.data() + row);
  }
}

EvalWindows::EvalWindows(const TokenShard& shard, int seq_len)
    : shard_(&shard), seq_len_(seq_len), count_(0) {
  check_shard(shard, seq_len, "EvalWindows");
  count_ = static_cast<std::int64_t>((shard.size() - 1) / static_cast<std::size_t>(seq_len));
}

std::int64_t EvalWindows::window_start(std::int64_t window) const {
  if (window < 0) throw std::invalid_argument(fmt::format("EvalWindows: negative window {}", window));
  return (window % count_) * seq_len_;
}

void EvalWindows::fill(std::int64_t first_window, int batch, std::span<std::int32_t> inputs,
                       std::span<std::int32_t> targets) const {
  if (batch < 0) throw std::invalid_argument(fmt::format("EvalWindows: negative batch {}", batch));
  const auto T = static_cast<std::size_t>(seq_len_);
  check_spans(static_cast<std::size_t>(batch) * T, inputs, targets, "EvalWindows::fill");
  for (int b = 0; b < batch; ++b) {
    const std::size_t row = static_cast<std::size_t>(b) * T;
    copy_window(*shard_, window_start(first_window + b), seq_len_, inputs.data() + row,
                targets.data() + row);
  }
}

}  // namespace trainer::data
