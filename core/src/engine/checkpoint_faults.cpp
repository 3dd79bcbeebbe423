#include "engine/checkpoint_faults.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "checkpoint/checkpointer.hpp"
#include "checkpoint/damage.hpp"

namespace trainer {

void corrupt_newest_checkpoint(checkpoint::Checkpointer& checkpointer, int shard_rank, std::int64_t step) {
  checkpointer.finish();
  // Rank 0 commits once every rank has written; on the other ranks the commit of the save
  // just finished may still be on its way. Wait for it, so the fault always hits that one.
  const auto& dir = checkpointer.settings().dir;
  if (const auto saved = checkpointer.last_saved()) {
    const auto committed = dir / checkpoint::step_dir_name(*saved);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (!std::filesystem::exists(committed / "manifest.json") && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  const auto damage = checkpoint::corrupt_newest_shard(dir, shard_rank);
  if (!damage) {
    fmt::print(stderr, "fault: step {}: no committed checkpoint with a shard of rank {} in {} to corrupt\n", step,
               shard_rank, dir.string());
  } else {
    fmt::print(stderr, "fault: rank {} corrupts byte {} of {} (the checkpoint of step {}) at the start of step {}\n",
               shard_rank, damage->offset, damage->file.string(), damage->step, step);
  }
  std::fflush(stderr);
}

}  // namespace trainer
