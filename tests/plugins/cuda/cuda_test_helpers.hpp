// Test helpers for the cuda backend: both backends loaded through the plugin registry, host
// vectors in and out, the relative-error check against the cpu backend, and an error table
// printed at exit (docs/gpu.md reports it).
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "trainer/backend.hpp"

namespace cuda_test {

// The cuda backend, or null after a WARN when no CUDA device is visible (CI has none). The
// plugin itself must exist either way: a missing plugin fails the test.
trainer::Backend* gpu();
trainer::Backend& cpu();

trainer::Tensor put(trainer::Backend& be, const std::vector<float>& host, const trainer::Shape& shape);
trainer::Tensor put_i32(trainer::Backend& be, const std::vector<std::int32_t>& host, const trainer::Shape& shape);
trainer::Tensor nans(trainer::Backend& be, const trainer::Shape& shape);  // poisoned output
std::vector<float> get(trainer::Backend& be, const trainer::Tensor& t);

std::vector<float> random_vector(std::size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f);
bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b);

// ||gpu - cpu|| / ||cpu|| (or ||gpu - cpu|| when cpu is all zero); +inf if anything is NaN.
double relative_error(const std::vector<float>& gpu, const std::vector<float>& cpu);

// Outputs of one run of an op on a backend, each named.
using Outputs = std::vector<std::pair<std::string, std::vector<float>>>;
using Run = std::function<Outputs(trainer::Backend&)>;

// Runs `run` on the cpu and twice on the gpu: every output within `tol` of the cpu's (NaN never
// passes) and the two gpu runs bitwise equal. Records the worst error under `op` for the table.
void compare(const std::string& op, const Run& run, double tol = 1e-5);
void record(const std::string& op, double error, bool bitwise_cpu);

}  // namespace cuda_test
