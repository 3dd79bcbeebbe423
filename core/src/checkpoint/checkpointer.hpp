// Checkpointer: the engine's side of checkpoints. It maps this rank's optimizer targets
// (`param` or `param[a:b]`: exactly what the rank owns under its layout, of its tensor-
// parallel shard of the parameter under tp) and their optimizer state onto whole tensors
// (slice_map.hpp), so a checkpoint saved under one layout, dp, tp and pp degree loads under
// any other. Saving snapshots the slices this rank is the writer of to host memory and hands
// them to the CheckpointWriter; loading reads every slice the rank holds back, from
// whichever shard files hold it. After load() the caller lets the layout make the rest
// consistent (Layout::after_optimizer_step: zero1/zero2 all-gather; under replicate and
// fsdp the targets are already the whole truth).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_reader.hpp"
#include "checkpoint/checkpoint_writer.hpp"
#include "trainer/config.hpp"
#include "trainer/optimizer.hpp"
#include "trainer/parameters.hpp"
#include "trainer/store.hpp"

namespace trainer::checkpoint {

struct CheckpointSettings {
  std::filesystem::path dir;
  std::int64_t every = 0;  // 0: no saves
  int keep = 3;
  bool async = true;
  bool resume = true;      // resume: auto
  std::optional<std::int64_t> kill_during_save;  // fault injection: see WriterOptions
  // The recipe's `checkpoint` section; dir "" means <output.dir>/checkpoints.
  static CheckpointSettings from_recipe(const ConfigNode& recipe);
};

// One slice held by this rank: the device tensor, and where its elements lie in the whole
// tensor (one region, or up to three for a tensor-parallel shard), in the tensor's order.
struct BoundSlice {
  std::vector<SliceRef> refs;
  Tensor tensor;
  std::size_t param = 0;
  bool tp_whole = true;  // the parameter is not split by tensor parallel: every tp rank holds it
  std::int64_t numel() const;
};

// Parameter values ("params/<name>") and optimizer state ("optimizer/<kind>/<name>") of
// `targets`. State names must be "<target name>.<kind>" and hold one value per element.
std::vector<BoundSlice> bind_state(const ParameterStore& params, const std::vector<OptimizerTarget>& targets,
                                   const Optimizer& optimizer);

// This rank in the job, and which of its slices it writes: every element of every tensor
// is written by exactly one rank of the job.
struct RankInfo {
  int rank = 0, world = 1;  // in the whole job: rank-<rank>.bin, rank 0 commits
  Store* store = nullptr;
  // The dp group's targets each cover everything (replicate): split the writing by
  // parameter over the group's ranks.
  bool replicated = false;
  int dp_rank = 0, dp_size = 1;
  int tp_rank = 0, tp_size = 1;  // a parameter every tp rank holds whole is written by tp rank 0
  // Parameters [0, foreign) are another pipeline stage's to write: the last stage's copy of
  // a tied embedding, which the first stage writes and both load.
  std::size_t foreign = 0;
  bool writes(const BoundSlice& s) const;
};

class Checkpointer {
 public:
  // Collective over the ranks (through the store): rank 0 picks the checkpoint to resume from.
  Checkpointer(const CheckpointSettings& settings, Backend& backend, std::vector<BoundSlice> slices,
               const RankInfo& rank, Manifest header);

  const CheckpointSettings& settings() const { return settings_; }
  // The checkpoint to resume from (resume: auto and one was found), and what was skipped.
  const std::optional<FoundCheckpoint>& resume_point() const { return resume_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Reads this rank's slices of the resume point into the device tensors.
  void load();

  bool due(std::int64_t steps_done) const { return settings_.every > 0 && steps_done % settings_.every == 0; }
  // Snapshot to host (waiting for the previous save first), then write; returns the seconds
  // the caller was blocked.
  double save(std::int64_t steps_done);
  std::optional<std::int64_t> last_saved() const { return last_saved_; }
  std::optional<WriteReport> take_finished() { return writer_->take_finished(); }
  void finish() { writer_->wait(); }

 private:
  CheckpointSettings settings_;
  Backend& backend_;
  std::vector<BoundSlice> slices_;  // everything this rank holds (loading)
  std::vector<std::size_t> mine_;   // the slices this rank writes
  RankInfo rank_;
  std::optional<FoundCheckpoint> resume_;
  std::vector<std::string> warnings_;
  std::unique_ptr<CheckpointWriter> writer_;
  std::optional<std::int64_t> last_saved_;
};

}  // namespace trainer::checkpoint
