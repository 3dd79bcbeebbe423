// Defaults of the SDK's device-side sums (Backend::accumulate_sum, Backend::sum_squares_many,
// Model::head_forward_backward_on_device, Layout::grad_sum_squares_on_device): the reference
// results, computed through host reads, so that a backend, model or layout without its own
// path needs nothing more. The cpu backend uses them as they are.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/layout.hpp"
#include "trainer/model.hpp"

namespace trainer {
namespace {

void require_scalar(const char* op, const char* name, const Tensor& t, bool f32_allowed) {
  const bool dtype_ok = t.dtype() == DType::f64 || (f32_allowed && t.dtype() == DType::f32);
  if (!t || t.numel() != 1 || !dtype_ok) {
    std::string s = op;
    s += ": ";
    s += name;
    s += f32_allowed ? " must be one f64 or f32 element, got " : " must be one f64 element, got ";
    s += t ? std::string(dtype_name(t.dtype())) + " " + shape_string(t.shape()) : std::string("an empty tensor");
    throw std::invalid_argument(s);
  }
}

}  // namespace

void Backend::accumulate_sum(const Tensor& acc, const Tensor& x, std::int64_t N, double scale) {
  const char* op = "accumulate_sum";
  require_scalar(op, "acc", acc, false);
  if (!x || x.numel() != N || (x.dtype() != DType::f32 && x.dtype() != DType::f64)) {
    std::string s = op;
    s += ": x must be f32 or f64 of N = " + std::to_string(N) + " elements, got ";
    s += x ? std::string(dtype_name(x.dtype())) + " " + shape_string(x.shape()) : std::string("an empty tensor");
    throw std::invalid_argument(s);
  }
  // In index order, as a model that reads its per-row losses back sums them.
  double sum = 0;
  if (x.dtype() == DType::f32) {
    std::vector<float> host(static_cast<std::size_t>(N));
    copy_to_host(host.data(), x);
    for (float v : host) sum += v;
  } else {
    std::vector<double> host(static_cast<std::size_t>(N));
    copy_to_host(host.data(), x);
    for (double v : host) sum += v;
  }
  double total = 0;
  copy_to_host(&total, acc);
  total += scale * sum;
  copy_from_host(acc, &total);
}

void Backend::sum_squares_many(const Tensor& out, const std::vector<SquaresTerm>& terms) {
  require_scalar("sum_squares_many", "out", out, true);
  double total = 0;
  for (const auto& term : terms) {
    if (term.x.numel() > 0) total += term.scale * sum_squares(term.x, term.x.numel());  // an empty term adds 0
  }
  if (out.dtype() == DType::f64) {
    copy_from_host(out, &total);
  } else {
    const float rounded = static_cast<float>(total);
    copy_from_host(out, &rounded);
  }
}

bool Model::head_forward_backward_on_device(const StepContext&, BatchShape, const Tensor&, const Tensor&, float,
                                            const Tensor&, BlockActivations&, const Tensor&, double) {
  return false;
}

void Layout::grad_sum_squares_on_device(const Tensor& out, Backend& backend) {
  require_scalar("grad_sum_squares_on_device", "out", out, false);
  const double value = grad_sum_squares();
  backend.copy_from_host(out, &value);
}

}  // namespace trainer
