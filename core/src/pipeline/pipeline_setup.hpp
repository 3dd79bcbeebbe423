// A recipe's pipeline, as `trainer run` and `trainer plan` both need it: the schedule plugin
// of the `pipeline` section, its action lists for this many stages and micro-batches
// (checked: well formed, never stuck), and the blocks of each chunk.
#pragma once
#include <memory>
#include <vector>

#include "pipeline/stage_plan.hpp"
#include "trainer/config.hpp"
#include "trainer/parameters.hpp"
#include "trainer/pipeline.hpp"

namespace trainer::pipeline {

struct PipelineSetup {
  std::unique_ptr<PipelineScheduler> scheduler;
  PipelineSchedule schedule;
  StagePlan plan;
  bool tied_head = true;  // the last stage also holds the embedding (model.tied_embeddings)
};

// Throws ConfigError (at the offending key) when the model has fewer blocks than chunks,
// the schedule cannot run this many micro-batches, or pipeline.stages is wrong.
PipelineSetup make_pipeline(const ConfigNode& recipe, const std::vector<ParameterSpec>& specs, int blocks, int stages,
                            int micro_batches);

}  // namespace trainer::pipeline
