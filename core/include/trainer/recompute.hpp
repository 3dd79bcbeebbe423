// RecomputePolicy: which of a block's activations stay in memory from forward to backward.
// Whatever is dropped is recomputed from the block input before the block's backward.
#pragma once
#include <vector>

#include "trainer/model.hpp"
#include "trainer/plugin.hpp"

namespace trainer {

class RecomputePolicy : public Plugin {
 public:
  // One flag per activation of `activations` (the model's declaration order).
  virtual std::vector<bool> keep(int block, int num_blocks,
                                 const std::vector<ActivationSpec>& activations) const = 0;
};

}  // namespace trainer
