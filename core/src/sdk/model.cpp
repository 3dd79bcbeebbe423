// Model's optional inference entry point: models written before sampling existed keep
// loading, and say clearly that they cannot sample.
#include <stdexcept>

#include "trainer/model.hpp"

namespace trainer {

void Model::head_logits(const StepContext&, BatchShape, const Tensor&, const Tensor&, BlockActivations&) {
  throw std::logic_error("this model does not implement head_logits, so it cannot generate text");
}

}  // namespace trainer
