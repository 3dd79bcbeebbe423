#include "cuda_test_helpers.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

#include "plugin/registry.hpp"
#include "support/plugins.hpp"

namespace cuda_test {

using trainer::Backend;
using trainer::PluginKind;
using trainer::Shape;
using trainer::Tensor;

namespace {

// Worst error per op over the whole process, printed at exit.
struct Table {
  std::map<std::string, std::pair<double, bool>> rows;
  ~Table() {
    if (rows.empty()) return;
    std::printf("\n| op | max relative error vs cpu | bitwise equal to cpu |\n|---|---|---|\n");
    for (const auto& [op, r] : rows) std::printf("| %s | %.3g | %s |\n", op.c_str(), r.first, r.second ? "yes" : "no");
  }
};
Table& table() {
  static Table t;
  return t;
}

}  // namespace

Backend& cpu() {
  static auto made = trainer::test::make_plugin<Backend>(PluginKind::backend, "cpu");
  return *made;
}

Backend* gpu() {
  // Fails (throws) if the plugin file is missing: the plugin must be built even without a GPU.
  trainer::find_plugin(PluginKind::backend, "cuda", {TRAINER_TEST_PLUGIN_DIR});
  static std::string missing;
  static trainer::test::Made<Backend> made = [] {
    try {
      return trainer::test::make_plugin<Backend>(PluginKind::backend, "cuda");
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()).find("no CUDA device is visible") == std::string::npos) throw;
      missing = e.what();
      return trainer::test::Made<Backend>{};
    }
  }();
  if (!made.object) {
    WARN("no CUDA device; skipped (" << missing << ")");
    return nullptr;
  }
  return made.object.get();
}

Tensor put(Backend& be, const std::vector<float>& host, const Shape& shape) {
  Tensor t = be.allocate(shape, trainer::DType::f32);
  REQUIRE(static_cast<std::size_t>(t.numel()) == host.size());
  be.copy_from_host(t, host.data());
  return t;
}

Tensor put_i32(Backend& be, const std::vector<std::int32_t>& host, const Shape& shape) {
  Tensor t = be.allocate(shape, trainer::DType::i32);
  REQUIRE(static_cast<std::size_t>(t.numel()) == host.size());
  be.copy_from_host(t, host.data());
  return t;
}

Tensor nans(Backend& be, const Shape& shape) {
  const auto n = static_cast<std::size_t>(trainer::shape_numel(shape));
  return put(be, std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()), shape);
}

std::vector<float> get(Backend& be, const Tensor& t) {
  std::vector<float> host(static_cast<std::size_t>(t.numel()));
  be.copy_to_host(host.data(), t);
  return host;
}

std::vector<float> random_vector(std::size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

double relative_error(const std::vector<float>& gpu, const std::vector<float>& cpu) {
  if (gpu.size() != cpu.size()) return std::numeric_limits<double>::infinity();
  double diff = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < gpu.size(); ++i) {
    if (std::isnan(gpu[i]) || std::isnan(cpu[i])) return std::numeric_limits<double>::infinity();
    const double d = static_cast<double>(gpu[i]) - cpu[i];
    diff += d * d;
    norm += static_cast<double>(cpu[i]) * cpu[i];
  }
  return norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

void record(const std::string& op, double error, bool bitwise_cpu) {
  auto [it, fresh] = table().rows.try_emplace(op, error, bitwise_cpu);
  if (!fresh) {
    it->second.first = std::max(it->second.first, error);
    it->second.second = it->second.second && bitwise_cpu;
  }
}

void compare(const std::string& op, const Run& run, double tol) {
  Backend* g = gpu();
  if (!g) return;
  const Outputs want = run(cpu());
  const Outputs got = run(*g);
  const Outputs again = run(*g);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double err = relative_error(got[i].second, want[i].second);
    const bool same = bitwise_equal(got[i].second, want[i].second);
    record(op, err, same);
    INFO(op << ": " << want[i].first << ": relative error " << err << " (tolerance " << tol << ")");
    CHECK(err <= tol);
    INFO(op << ": " << want[i].first << ": two gpu runs differ");
    CHECK(bitwise_equal(got[i].second, again[i].second));
  }
}

}  // namespace cuda_test
