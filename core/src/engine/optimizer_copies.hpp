// Which parameter units' bf16 compute copies an optimizer's step rewrites, so the trainer can
// skip their separate refresh (Optimizer::writes_compute, OptimizerTarget::compute).
#pragma once
#include <vector>

#include "trainer/optimizer.hpp"
#include "trainer/parameters.hpp"

namespace trainer {

// written[u]: every parameter of unit u is a whole target (the store's own value view) that
// carries the store's own compute copy of it. A unit with any parameter missing, sliced (a
// sharded layout's target) or paired with another tensor is false: its copy is refreshed.
std::vector<bool> units_written_by(const ParameterStore& params, const std::vector<OptimizerTarget>& targets);

}  // namespace trainer
