// The three schedules' action lists. Each rank's list is its compute order (forward and
// backward of (micro-batch, chunk) pairs) with a receive placed just before each compute
// that needs a neighbour's data and a send just after each compute whose result a
// neighbour needs.
#pragma once
#include "trainer/pipeline.hpp"

namespace pipeline_schedules {

// All forwards in micro-batch order, then all backwards in micro-batch order: every
// micro-batch's activations are held until the backwards start.
trainer::PipelineSchedule gpipe(int stages, int micro_batches);
// One forward, one backward: rank r runs stages-r-1 warm-up forwards, then alternates, so
// at most stages-r micro-batches are in flight on it.
trainer::PipelineSchedule one_f_one_b(int stages, int micro_batches);
// 1f1b over `virtual_stages` chunks per rank (Megatron's interleaved order): micro-batches
// go through the chunks in groups of `stages`; the bubble shrinks by the factor v.
trainer::PipelineSchedule interleaved(int stages, int virtual_stages, int micro_batches);

}  // namespace pipeline_schedules
