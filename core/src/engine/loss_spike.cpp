#include "engine/loss_spike.hpp"

#include <cmath>

namespace trainer {

LossSpikeDetector::LossSpikeDetector(double ratio, int window)
    : ratio_(ratio), window_(static_cast<std::size_t>(window < 1 ? 1 : window)) {}

double LossSpikeDetector::mean() const {
  if (losses_.empty()) return 0;
  const std::size_t n = losses_.size() < window_ ? losses_.size() : window_;
  double sum = 0;
  for (std::size_t i = losses_.size() - n; i < losses_.size(); ++i) sum += losses_[i].second;
  return sum / static_cast<double>(n);
}

std::optional<double> LossSpikeDetector::judge(double loss) const {
  if (!enabled() || losses_.size() < window_ || !std::isfinite(loss)) return std::nullopt;
  const double m = mean();
  if (!(m > 0)) return std::nullopt;
  const double r = loss / m;
  return r > ratio_ ? std::optional<double>(r) : std::nullopt;
}

void LossSpikeDetector::record(std::int64_t step, double loss) {
  if (!enabled()) return;
  losses_.emplace_back(step, loss);
}

void LossSpikeDetector::rewind(std::int64_t step) {
  while (!losses_.empty() && losses_.back().first > step) losses_.pop_back();
}

void LossSpikeDetector::settle(std::int64_t step) {
  std::size_t at_or_before = 0;
  while (at_or_before < losses_.size() && losses_[at_or_before].first <= step) ++at_or_before;
  while (at_or_before > window_) {
    losses_.pop_front();
    --at_or_before;
  }
}

}  // namespace trainer
