// The schedule replayed with one step's measured costs: the prediction the measured bubble
// is held to. Each stage measures, per action of its list, its own time (computing, posting a
// send, bookkeeping; waiting excluded) and when its messages were sent and received; the
// simulation then walks the lists against each other with those times and one transfer and
// one receive cost per message. What it predicts is the idle time the schedule's ordering
// implies for those costs; what the stages measured is the idle time they actually had.
#pragma once
#include <vector>

#include "pipeline/schedule_simulation.hpp"
#include "trainer/pipeline.hpp"

namespace trainer::pipeline {

// One step on every stage of a pipeline (index: pipeline rank). Times are seconds on the
// stage's own clock, which starts when the stage leaves the barrier that starts the step.
// Per action of the rank's list: took (its own time), computing (the part in
// forward/backward), at (a send: when it started; a receive: when its message was in hand)
// and asked (a receive: when the rank started waiting for it); -1 where it does not apply.
struct MeasuredStep {
  std::vector<double> span;     // start barrier to the end barrier
  std::vector<double> compute;  // seconds in forward/backward
  std::vector<double> start;    // start barrier to the first action
  std::vector<std::vector<double>> took, computing, at, asked;
  // When each stage left the start barrier, on stage 0's clock (align_clocks fills it; empty:
  // all at 0). On a loaded machine the stages leave a barrier milliseconds apart.
  std::vector<double> offset;
  double bubble(std::size_t rank) const {
    return span[rank] > 0 ? (span[rank] - compute[rank]) / span[rank] : 0.0;
  }
};

// Puts every stage's times on stage 0's clock. The offset between neighbouring stages r-1 and
// r lies between two bounds that no message can break (none is in hand before it was sent):
// the largest (sent - in hand) of the messages from r-1 to r, and the smallest (in hand -
// sent) of those from r to r-1. The estimate is the middle of the two (the fastest message
// each way taking the same time). Every pair of neighbours exchanges activations one way
// and gradients the other, so both bounds exist.
void align_clocks(const PipelineSchedule& schedule, MeasuredStep& step);

// The message costs this step shows (its times aligned): transfer, the mean over messages a
// receiver asked for before they were sent of (in hand - sent); receive, the mean over
// messages that had arrived when asked for (asked after sent + transfer) of (in hand -
// asked). 0 without any. Means, not medians: these costs add up along the step, and on a
// loaded machine a few receives wait milliseconds for the communication thread to run.
MessageCosts measured_message_costs(const PipelineSchedule& schedule, const MeasuredStep& step);

// The schedule walked with the step's own action times and message costs, each stage starting
// at its offset; the step ends with a barrier over the stages, one transfer after the last
// stage's end. Each stage's bubble is over its own span, as measured: from its offset to the end.
PipelineTimeline replay(const PipelineSchedule& schedule, const MeasuredStep& step, MessageCosts messages);

}  // namespace trainer::pipeline
