// The checkpoint faults of the recipe's `faults` list. kill_during_save is carried out by the
// checkpoint writer itself (WriterOptions::kill_during_save); corrupt is done here.
#pragma once
#include <cstdint>

namespace trainer::checkpoint {
class Checkpointer;
}

namespace trainer {

// faults: kind corrupt. Waits for this rank's save in flight and for its commit, then
// flips every bit of the middle byte of `shard_rank`'s shard in the newest committed
// checkpoint, and says so on stderr. `step`: the 1-based step the fault hits (for the message).
void corrupt_newest_checkpoint(checkpoint::Checkpointer& checkpointer, int shard_rank, std::int64_t step);

}  // namespace trainer
