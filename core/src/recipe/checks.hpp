// Rules that relate keys of different sections, run after schema validation.
#pragma once
#include <vector>

#include "recipe/diagnostics.hpp"
#include "trainer/config.hpp"

namespace trainer::recipe {

// Fills train.global_batch when absent (micro_batch x parallel.dp), then checks batch
// arithmetic, min_lr <= lr, warmup_steps <= steps, and that bf16 runs on the cuda backend.
// Values the schema already rejected (wrong type) are skipped rather than reported twice.
// eval_every and log_every >= 1 are the schema's `min: 1`.
std::vector<Diagnostic> check_recipe(ConfigNode& recipe);

}  // namespace trainer::recipe
