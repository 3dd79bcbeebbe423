// Checking and timing a pipeline schedule without running a model: every micro-batch's
// forward and backward once per chunk and in order, every send received, no rank waiting
// forever, and the bubble each rank sees when forward and backward take given times.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "trainer/pipeline.hpp"

namespace trainer::pipeline {

// Problems with a schedule's structure, each one sentence; empty when it is well formed.
std::vector<std::string> check_schedule(const PipelineSchedule& schedule);

// Seconds (or units) one compute action takes on `rank`: forward or backward of `chunk`.
using ActionCost = std::function<double(int rank, PipelineAction::Kind kind, int chunk)>;
// Forward 1 and backward 2 per rank-worth of blocks: a chunk is 1/virtual_stages of that.
ActionCost unit_costs(const PipelineSchedule& schedule);

struct PipelineTimeline {
  bool completes = true;
  std::string stuck;            // when !completes: where each rank waits
  double makespan = 0;          // from the first action to the last rank's end
  std::vector<double> busy;     // per rank: time computing
  std::vector<double> bubble;   // per rank: (makespan - busy) / makespan
  std::vector<int> peak_in_flight;  // per rank: most (micro-batch, chunk) forwards awaiting their backward
};

// Runs the action lists against each other: sends never wait, a receive waits until the
// matching send happened and then `transfer` more (0: transfers take no time).
PipelineTimeline simulate(const PipelineSchedule& schedule, const ActionCost& cost, double transfer = 0.0);

// Every action's own time, for replaying a step as it ran (pipeline/step_replay.hpp).
struct ActionTimes {
  std::vector<double> start;                   // per rank: before its first action
  std::vector<std::vector<double>> took;       // per rank and action of its list: its own time
  std::vector<std::vector<double>> computing;  // the part of `took` that counts as busy
};
// How long a message takes: it is in the receiver's hands at the later of `transfer` after
// its send and `receive` after the receiver asked for it (a message already there still has
// to be taken from the communicator).
struct MessageCosts {
  double transfer = 0;
  double receive = 0;
};
// The same walk with each action taking its own time: sends and receives may take time too
// (posting, bookkeeping), but only `computing` is busy; a message leaves when its send
// starts. A rank's end is its last action's.
PipelineTimeline simulate(const PipelineSchedule& schedule, const ActionTimes& times, MessageCosts messages);

// The textbook figures: (p-1)/(m+p-1) for gpipe and 1f1b, (p-1)/(v·m+p-1) interleaved.
double textbook_bubble(int stages, int virtual_stages, int micro_batches);

// The schedule as text: one line per rank, e.g. "rank 0: F0.0 >A0.0 F1.0 ... <G0.0 B0.0".
// F/B = forward/backward of micro.chunk; >A/<A = send/recv activation; >G/<G gradient.
std::string describe(const PipelineSchedule& schedule);

}  // namespace trainer::pipeline
