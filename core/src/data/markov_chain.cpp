#include "data/markov_chain.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace trainer::data {
namespace {

// De Bruijn sequence B(k, n) by the Fredricksen–Kessler–Maiorana construction
// (concatenated Lyndon words): read cyclically, every length-n word over k symbols
// appears exactly once, i.e. it is a Hamiltonian cycle through all order-n states.
class DeBruijn {
 public:
  DeBruijn(int k, int n, std::uint64_t length) : k_(k), n_(n), a_(static_cast<std::size_t>(n) + 1, 0) {
    seq_.reserve(length);
  }
  std::vector<std::uint16_t> run() {
    visit(1, 1);
    return std::move(seq_);
  }

 private:
  void visit(int t, int p) {
    if (t > n_) {
      if (n_ % p == 0) {
        for (int i = 1; i <= p; ++i) seq_.push_back(a_[static_cast<std::size_t>(i)]);
      }
      return;
    }
    a_[t] = a_[t - p];
    visit(t + 1, p);
    for (int j = a_[t - p] + 1; j < k_; ++j) {
      a_[t] = static_cast<std::uint16_t>(j);
      visit(t + 1, t);
    }
  }
  int k_, n_;
  std::vector<std::uint16_t> a_;
  std::vector<std::uint16_t> seq_;
};

}  // namespace

MarkovChain::MarkovChain(const MarkovParams& params) : params_(params) {
  if (params.vocab < 2 || params.vocab > 65536) {
    throw std::invalid_argument(fmt::format("synthetic vocab must be in [2, 65536], got {}", params.vocab));
  }
  if (params.order < 1) throw std::invalid_argument(fmt::format("order must be >= 1, got {}", params.order));
  if (params.branching < 1 || params.branching > params.vocab) {
    throw std::invalid_argument(fmt::format("branching must be in [1, vocab={}], got {}",
                                            params.vocab, params.branching));
  }
  if (!(params.concentration > 0.0) || !std::isfinite(params.concentration)) {
    throw std::invalid_argument(fmt::format("concentration must be positive, got {}", params.concentration));
  }
  const auto V = static_cast<std::uint64_t>(params.vocab);
  const auto b = static_cast<std::uint64_t>(params.branching);
  states_ = 1;
  for (int i = 0; i < params.order; ++i) {
    states_ *= V;
    if (states_ > kMaxMarkovStates) {
      throw std::invalid_argument(fmt::format(
          "vocab^order = {}^{} exceeds the limit of {} states", params.vocab, params.order, kMaxMarkovStates));
    }
  }
  if (states_ * b > kMaxMarkovEdges) {
    throw std::invalid_argument(fmt::format("states x branching = {} exceeds the limit of {}",
                                            states_ * b, kMaxMarkovEdges));
  }
  stride_ = states_ / V;

  Engine engine(params.seed);
  // Irreducibility by construction: slot 0 of every state follows a de Bruijn cycle (under
  // a random relabelling of the tokens), so every state reaches every other. Then the
  // stationary distribution is unique, both splits sample the same ergodic process, and
  // H is the floor whatever the start state. The chain may still be periodic (branching 1
  // is a single cycle), which the lazy power iteration in stationary() tolerates.
  std::vector<std::uint16_t> relabel(V);
  std::iota(relabel.begin(), relabel.end(), std::uint16_t{0});
  for (std::uint64_t i = V - 1; i > 0; --i) std::swap(relabel[i], relabel[uniform_below(engine, i + 1)]);
  const std::vector<std::uint16_t> cycle = DeBruijn(params.vocab, params.order, states_).run();
  std::vector<std::uint16_t> backbone(states_);
  std::uint64_t s = 0;
  for (int i = 0; i < params.order; ++i) s = s * V + relabel[cycle[static_cast<std::size_t>(i)]];
  for (std::uint64_t i = 0; i < states_; ++i) {
    const std::uint16_t next = relabel[cycle[(i + static_cast<std::uint64_t>(params.order)) % states_]];
    backbone[s] = next;
    s = next_state(s, next);
  }

  // The other branching-1 successors: a partial Fisher–Yates shuffle of a token pool that
  // persists across states (a permutation of a permutation is still uniform), O(b) each.
  std::vector<std::uint16_t> pool(V);
  std::vector<std::uint32_t> where(V);
  std::iota(pool.begin(), pool.end(), std::uint16_t{0});
  std::iota(where.begin(), where.end(), 0u);
  auto swap_slots = [&](std::uint64_t i, std::uint64_t j) {
    std::swap(pool[i], pool[j]);
    where[pool[i]] = static_cast<std::uint32_t>(i);
    where[pool[j]] = static_cast<std::uint32_t>(j);
  };
  successors_.resize(states_ * b);
  probs_.resize(states_ * b);
  for (std::uint64_t st = 0; st < states_; ++st) {
    swap_slots(0, where[backbone[st]]);
    for (std::uint64_t j = 1; j < b; ++j) swap_slots(j, j + uniform_below(engine, V - j));
    std::copy(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(b), successors_.begin() + st * b);
    symmetric_dirichlet(engine, params.concentration, std::span(probs_).subspan(st * b, b));
  }
}

std::span<const std::uint16_t> MarkovChain::successors(std::uint64_t state) const {
  const auto b = static_cast<std::size_t>(params_.branching);
  return std::span(successors_).subspan(state * b, b);
}

std::span<const double> MarkovChain::probabilities(std::uint64_t state) const {
  const auto b = static_cast<std::size_t>(params_.branching);
  return std::span(probs_).subspan(state * b, b);
}

int MarkovChain::pick(std::uint64_t state, double u) const {
  const auto p = probabilities(state);
  double cumulative = 0.0;
  for (std::size_t j = 0; j + 1 < p.size(); ++j) {
    cumulative += p[j];
    if (u < cumulative) return static_cast<int>(j);
  }
  return static_cast<int>(p.size()) - 1;  // also absorbs rounding in the running sum
}

std::vector<double> MarkovChain::stationary(double tolerance) const {
  // Lazy iteration pi <- a pi + (1 - a) pi P: same fixed point as P, but aperiodic, so it
  // converges for periodic chains too; a small a costs little speed on the chains that
  // mix well. Starting from uniform makes permutation chains (branching 1) converge at once.
  const auto n = static_cast<std::size_t>(states_);
  const auto b = static_cast<std::size_t>(params_.branching);
  const auto V = static_cast<std::uint64_t>(params_.vocab);
  std::vector<double> pi(n, 1.0 / static_cast<double>(n));
  std::vector<double> next(n);
  constexpr double kLazy = 0.1;
  // A bounded amount of work (~2e10 edge updates, under a minute) before giving up: only
  // nearly deterministic chains (concentration << 1) mix that slowly.
  const std::uint64_t max_iters =
      std::min<std::uint64_t>(2'000'000, std::max<std::uint64_t>(1'000, 20'000'000'000ull / (states_ * b)));
  for (std::uint64_t iter = 0; iter < max_iters; ++iter) {
    for (std::size_t s = 0; s < n; ++s) next[s] = kLazy * pi[s];
    for (std::size_t s = 0; s < n; ++s) {
      const double mass = (1.0 - kLazy) * pi[s];
      const std::uint64_t base = (s % stride_) * V;
      const std::uint16_t* succ = successors_.data() + s * b;
      const double* p = probs_.data() + s * b;
      for (std::size_t j = 0; j < b; ++j) next[base + succ[j]] += mass * p[j];
    }
    double total = 0.0;
    for (const double x : next) total += x;
    double delta = 0.0;
    for (std::size_t s = 0; s < n; ++s) {
      next[s] /= total;  // keep rounding drift from accumulating in the total mass
      delta += std::abs(next[s] - pi[s]);
    }
    pi.swap(next);
    if (delta < tolerance) return pi;
  }
  throw std::runtime_error(fmt::format(
      "stationary distribution of the synthetic chain did not converge in {} iterations "
      "(chain mixes too slowly; raise concentration or branching)", max_iters));
}

double MarkovChain::entropy_rate(std::span<const double> pi) const {
  double h = 0.0;
  for (std::uint64_t s = 0; s < states_; ++s) {
    double hs = 0.0;
    for (const double p : probabilities(s)) {
      if (p > 0.0) hs -= p * std::log(p);
    }
    h += pi[s] * hs;
  }
  return h;
}

}  // namespace trainer::data
