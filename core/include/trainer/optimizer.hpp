// Optimizer: the update rule applied to the parameter ranges this rank owns.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/plugin.hpp"

namespace trainer {

// One contiguous range of parameters and its gradient. Under sharded layouts a target
// may be a slice of a parameter.
struct OptimizerTarget {
  std::string name;
  Tensor value;
  Tensor grad;
  bool weight_decay = false;
  // Mixed precision: empty, or the bf16 compute copy of exactly `value`. An optimizer whose
  // writes_compute() is true writes the new value there (rounded) in its step, and the
  // engine then skips that copy's separate refresh.
  Tensor compute;
};

class Optimizer : public Plugin {
 public:
  // Allocates state for every target on `backend`.
  virtual void init(Backend& backend, const std::vector<OptimizerTarget>& targets) = 0;
  // t counts updates from 1.
  virtual void step(float lr, std::int64_t t) = 0;
  // Whether step() also writes every target's `compute` copy (where one is given).
  virtual bool writes_compute() const { return false; }
  virtual std::size_t state_bytes() const = 0;
  // Named state tensors, one set per target, for checkpoints.
  virtual std::vector<std::pair<std::string, Tensor>> state() const = 0;
};

}  // namespace trainer
