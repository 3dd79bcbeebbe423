// Loss spikes: a step whose loss is far above the recent good steps' mean (a bad batch, an
// optimizer blow-up in the making). The statistic is the mean loss of the last `window`
// good steps; no step is judged before the window is full, so the fast early descent and a
// freshly resumed run (whose window starts empty) are never called spikes.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace trainer {

class LossSpikeDetector {
 public:
  LossSpikeDetector() = default;  // off
  // ratio 0: off; otherwise a loss above ratio x mean is a spike.
  LossSpikeDetector(double ratio, int window);

  bool enabled() const { return ratio_ > 0; }
  // The loss's ratio to the running mean when it is a spike; nullopt otherwise (also
  // while the window is not yet full).
  std::optional<double> judge(double loss) const;
  // A good step's loss (1-based step) joins the window, pushing the oldest out.
  void record(std::int64_t step, double loss);
  // Forget the steps after `step` (a rollback to the state after `step`).
  void rewind(std::int64_t step);
  // A checkpoint of `step` exists: a rollback goes back no further (or, past a damaged
  // one, finds a short window and judges nothing until it refills), so the entries
  // before the last `window` ones at or before `step` can go.
  void settle(std::int64_t step);
  double mean() const;
  std::size_t size() const { return losses_.size(); }

 private:
  double ratio_ = 0;
  std::size_t window_ = 1;
  // (step, loss) of good steps, oldest first: the window, and since the last settled
  // checkpoint everything a rewind must be able to restore.
  std::deque<std::pair<std::int64_t, double>> losses_;
};

}  // namespace trainer
