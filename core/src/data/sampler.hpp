// Which token windows a step trains and evaluates on. A training window is a pure
// function of (seed, step, global sample index): the same step sees the same samples
// whatever the data-parallel layout or micro-batch split, so resume and re-layout are exact
// and the sampler has no state to checkpoint.
#pragma once
#include <cstdint>
#include <span>

#include "data/token_shard.hpp"

namespace trainer::data {

// Random windows of seq_len + 1 tokens. Keeps a reference: the shard must outlive it.
class BatchSampler {
 public:
  // Throws std::invalid_argument if seq_len < 1 or the shard holds fewer than seq_len + 1 tokens.
  BatchSampler(const TokenShard& shard, int seq_len, std::uint64_t seed);

  int seq_len() const { return seq_len_; }
  std::uint64_t seed() const { return seed_; }
  // Number of distinct window starts: 0 .. shard.size() - seq_len - 1.
  std::int64_t start_count() const { return start_count_; }
  std::int64_t window_start(std::int64_t step, std::int64_t global_index) const;

  // inputs = tokens[start, start + T), targets = tokens[start + 1, start + T + 1);
  // both spans must hold exactly seq_len values.
  void sample(std::int64_t step, std::int64_t global_index, std::span<std::int32_t> inputs,
              std::span<std::int32_t> targets) const;
  // Rows b = 0..B-1 (row-major, B x seq_len) are samples first_global_index + b.
  void fill_micro_batch(std::int64_t step, std::int64_t first_global_index, int batch,
                        std::span<std::int32_t> inputs, std::span<std::int32_t> targets) const;

 private:
  const TokenShard* shard_;
  int seq_len_;
  std::uint64_t seed_;
  std::int64_t start_count_;
};

// Consecutive non-overlapping windows from the start of a (validation) shard: window w
// starts at w * seq_len, its targets end at w * seq_len + seq_len. Keeps a reference.
class EvalWindows {
 public:
  // Throws std::invalid_argument if seq_len < 1 or the shard holds fewer than seq_len + 1 tokens.
  EvalWindows(const TokenShard& shard, int seq_len);

  int seq_len() const { return seq_len_; }
  std::int64_t count() const { return count_; }  // (size - 1) / seq_len
  std::int64_t window_start(std::int64_t window) const;  // window taken modulo count()
  // Rows b = 0..B-1 are windows (first_window + b) mod count(): asking for more than
  // count() windows wraps around to the start.
  void fill(std::int64_t first_window, int batch, std::span<std::int32_t> inputs,
            std::span<std::int32_t> targets) const;

 private:
  const TokenShard* shard_;
  int seq_len_;
  std::int64_t count_;
};

}  // namespace trainer::data
