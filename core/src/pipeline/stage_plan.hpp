// Which blocks each pipeline chunk runs, and which parameters a pipeline rank holds.
#pragma once
#include <string>
#include <vector>

#include "trainer/parameters.hpp"
#include "trainer/pipeline.hpp"

namespace trainer::pipeline {

// Chunk c runs blocks [first[c], first[c+1]); first.front() == 0, first.back() == blocks.
struct StagePlan {
  std::vector<int> first;
  int chunks() const { return static_cast<int>(first.size()) - 1; }
  int begin(int chunk) const { return first.at(static_cast<std::size_t>(chunk)); }
  int end(int chunk) const { return first.at(static_cast<std::size_t>(chunk) + 1); }
  std::string describe() const;  // "blocks 0-1 | 2-3 | ..."
};

// Contiguous chunks of at least one block with the largest chunk's parameter count as
// small as possible (ties: the earlier chunks smaller, since the first stage also embeds).
StagePlan balance_by_parameters(const std::vector<ParameterSpec>& specs, int blocks, int chunks);

// `boundaries`: the first block of chunks 1 ... chunks-1, strictly increasing inside (0, blocks).
// Returns the plan, or throws std::invalid_argument saying what is wrong.
StagePlan explicit_plan(const std::vector<int>& boundaries, int blocks, int chunks);

// The parameters of `rank`'s chunks: its blocks; the embedding parameters (block -1 before
// the first block) where chunk 0 runs; the head parameters (block -1 after the last block)
// where the last chunk runs. With `tied_head`, the last chunk's rank also holds the
// embedding parameters, whose gradients the two ranks sum before the update.
std::vector<ParameterSpec> stage_parameters(const std::vector<ParameterSpec>& all, const StagePlan& plan,
                                            const PipelineSchedule& schedule, int rank, bool tied_head);

// How many parameter specs lead `all` with block -1 (the embedding unit).
std::size_t embedding_parameter_count(const std::vector<ParameterSpec>& all);

}  // namespace trainer::pipeline
