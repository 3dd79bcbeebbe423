#include "data/portable_random.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace trainer::data {

double uniform01(Engine& engine) {
  return static_cast<double>(engine() >> 11) * 0x1.0p-53;
}

std::uint64_t uniform_below(Engine& engine, std::uint64_t n) {
  if (n == 0) throw std::invalid_argument("uniform_below: empty range");
  // 2^64 mod n values at the bottom would be over-represented by a plain modulo.
  const std::uint64_t threshold = (0 - n) % n;
  std::uint64_t x = engine();
  while (x < threshold) x = engine();
  return x % n;
}

double standard_normal(Engine& engine) {
  // Polar method; the second variate is dropped so each call consumes a self-contained
  // run of engine outputs (no hidden state to save or restore).
  while (true) {
    const double u = 2.0 * uniform01(engine) - 1.0;
    const double v = 2.0 * uniform01(engine) - 1.0;
    const double s = u * u + v * v;
    if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
  }
}

double log_gamma_variate(Engine& engine, double shape) {
  if (!(shape > 0.0) || !std::isfinite(shape)) {
    throw std::invalid_argument("gamma shape must be positive and finite");
  }
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a); in logs that is a sum, which cannot underflow.
    double u = uniform01(engine);
    while (u == 0.0) u = uniform01(engine);
    return log_gamma_variate(engine, shape + 1.0) + std::log(u) / shape;
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = standard_normal(engine);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = uniform01(engine);
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return std::log(d * v);  // cheap squeeze
    if (u > 0.0 && std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return std::log(d * v);
  }
}

void symmetric_dirichlet(Engine& engine, double concentration, std::span<double> out) {
  if (out.empty()) return;
  for (double& g : out) g = log_gamma_variate(engine, concentration);
  // Normalise in log space (softmax) so tiny gammas do not all round to zero.
  const double top = *std::max_element(out.begin(), out.end());
  double sum = 0.0;
  for (double& g : out) {
    g = std::exp(g - top);
    sum += g;
  }
  for (double& g : out) g /= sum;
}

}  // namespace trainer::data
