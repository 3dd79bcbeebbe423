#include "engine/optimizer_copies.hpp"

namespace trainer {

std::vector<bool> units_written_by(const ParameterStore& params, const std::vector<OptimizerTarget>& targets) {
  std::vector<bool> covered(params.size(), false);
  for (const auto& t : targets) {
    if (!t.compute) continue;
    const auto i = params.find(t.name);
    if (!i) continue;
    const Tensor own = params.compute_value(*i), value = params.value(*i);
    covered[*i] = own && own.dtype() != DType::f32 && t.compute.data() == own.data() &&
                  t.compute.numel() == own.numel() && t.value.data() == value.data() &&
                  t.value.numel() == value.numel();
  }
  std::vector<bool> written(params.units().size(), false);
  for (std::size_t u = 0; u < written.size(); ++u) {
    const auto& unit = params.units()[u];
    bool all = unit.last > unit.first;
    for (std::size_t i = unit.first; i < unit.last; ++i) all = all && covered[i];
    written[u] = all;
  }
  return written;
}

}  // namespace trainer
