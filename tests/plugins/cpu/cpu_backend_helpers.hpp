// Test helpers for the cpu backend: loading it through its plugin file, moving host vectors
// in and out of tensors, random data, and the finite-difference gradient check.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/plugin.hpp"

namespace cpu_test {

// Loaded once per process with dlopen and never unloaded: backend objects' code lives there.
const trainer::PluginDescriptor& descriptor();
trainer::Backend& backend();

trainer::Tensor upload(const std::vector<float>& host, const trainer::Shape& shape);
trainer::Tensor upload_i32(const std::vector<std::int32_t>& host, const trainer::Shape& shape);
trainer::Tensor zeros(const trainer::Shape& shape);
std::vector<float> download(const trainer::Tensor& t);
void upload_into(const trainer::Tensor& t, const std::vector<float>& host);

std::vector<float> random_vector(std::size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f);
double dot(const std::vector<float>& a, const std::vector<float>& b);
bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b);

struct GradCheck {
  int samples = 24;
  float h = 1e-2f;
  double rtol = 1e-2;
  double atol = 2e-3;
};
inline GradCheck with_atol(double atol) {
  GradCheck g;
  g.atol = atol;
  return g;
}

// Compares analytic[i] with (loss(x_i + h) - loss(x_i - h)) / (2h) on `samples` random
// coordinates of x, which `loss` reads through its captured reference. Reports the name.
void check_gradient(const std::string& name, std::vector<float>& x,
                    const std::vector<float>& analytic, const std::function<double()>& loss,
                    std::mt19937& rng, GradCheck options = {});

}  // namespace cpu_test
