// A sparse Markov chain over tokens whose entropy rate is known exactly: the synthetic
// corpus's loss floor. The state is the last `order` tokens, encoded base-vocab with the
// most recent token in the lowest digit; each state has `branching` distinct successors.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "data/portable_random.hpp"

namespace trainer::data {

struct MarkovParams {
  int vocab = 64;
  int order = 1;
  int branching = 4;
  double concentration = 1.0;  // symmetric Dirichlet over each state's successors
  std::uint64_t seed = 0;      // chain structure and probabilities
};

// Limits that keep the state tables and power iteration cheap (tens of MB at most).
inline constexpr std::uint64_t kMaxMarkovStates = std::uint64_t{1} << 20;
inline constexpr std::uint64_t kMaxMarkovEdges = std::uint64_t{1} << 26;

class MarkovChain {
 public:
  // Throws std::invalid_argument for out-of-range parameters (vocab must fit uint16).
  explicit MarkovChain(const MarkovParams& params);

  const MarkovParams& params() const { return params_; }
  std::uint64_t state_count() const { return states_; }
  std::span<const std::uint16_t> successors(std::uint64_t state) const;
  std::span<const double> probabilities(std::uint64_t state) const;
  std::uint64_t next_state(std::uint64_t state, std::uint16_t token) const {
    return (state % stride_) * static_cast<std::uint64_t>(params_.vocab) + token;
  }
  // Successor slot whose cumulative probability first exceeds u in [0, 1).
  int pick(std::uint64_t state, double u) const;

  // Stationary distribution by power iteration until the L1 change is below `tolerance`;
  // throws std::runtime_error if that takes more than a bounded amount of work.
  std::vector<double> stationary(double tolerance = 1e-13) const;
  // Entropy rate Σ_s π(s) H(P(·|s)) in nats/token.
  double entropy_rate(std::span<const double> pi) const;

 private:
  MarkovParams params_;
  std::uint64_t states_ = 0;
  std::uint64_t stride_ = 0;  // vocab^(order-1): drops the oldest token of a state
  std::vector<std::uint16_t> successors_;  // states_ x branching
  std::vector<double> probs_;              // states_ x branching
};

}  // namespace trainer::data
