#include "cpu_backend_helpers.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "trainer/config.hpp"

namespace cpu_test {

using trainer::Shape;
using trainer::Tensor;

// The core's plugin registry is not used on purpose: these tests cover the plugin file
// alone, the way any loader sees it.
const trainer::PluginDescriptor& descriptor() {
  static const trainer::PluginDescriptor* desc = [] {
    const char* path = TRAINER_TEST_PLUGIN_DIR "/trainer_plugin_cpu.so";
    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) throw std::runtime_error(std::string("dlopen failed: ") + dlerror());
    using Entry = const trainer::PluginDescriptor* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "trainer_plugin_descriptor"));
    if (!entry) throw std::runtime_error(std::string(path) + " exports no trainer_plugin_descriptor");
    const trainer::PluginDescriptor* d = entry();
    if (d->abi_version != trainer::kAbiVersion) {
      throw std::runtime_error(std::string(path) + " has ABI version " + std::to_string(d->abi_version));
    }
    return d;
  }();
  return *desc;
}

trainer::Backend& backend() {
  static std::unique_ptr<trainer::Backend> instance = [] {
    auto config = trainer::ConfigNode::map();
    config["threads"] = trainer::ConfigNode::scalar("0");
    const trainer::PluginContext context{config, nullptr};
    std::unique_ptr<trainer::Plugin> plugin = descriptor().create(context);
    auto* b = dynamic_cast<trainer::Backend*>(plugin.get());
    if (!b) throw std::runtime_error("the cpu plugin did not create a Backend");
    plugin.release();
    return std::unique_ptr<trainer::Backend>(b);
  }();
  return *instance;
}

Tensor upload(const std::vector<float>& host, const Shape& shape) {
  Tensor t = backend().allocate(shape, trainer::DType::f32);
  REQUIRE(static_cast<std::size_t>(t.numel()) == host.size());
  backend().copy_from_host(t, host.data());
  return t;
}

Tensor upload_i32(const std::vector<std::int32_t>& host, const Shape& shape) {
  Tensor t = backend().allocate(shape, trainer::DType::i32);
  REQUIRE(static_cast<std::size_t>(t.numel()) == host.size());
  backend().copy_from_host(t, host.data());
  return t;
}

Tensor zeros(const Shape& shape) {
  Tensor t = backend().allocate(shape, trainer::DType::f32);
  backend().fill_zero(t);
  return t;
}

std::vector<float> download(const Tensor& t) {
  std::vector<float> host(static_cast<std::size_t>(t.numel()));
  backend().copy_to_host(host.data(), t);
  return host;
}

void upload_into(const Tensor& t, const std::vector<float>& host) {
  REQUIRE(static_cast<std::size_t>(t.numel()) == host.size());
  backend().copy_from_host(t, host.data());
}

std::vector<float> random_vector(std::size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void check_gradient(const std::string& name, std::vector<float>& x,
                    const std::vector<float>& analytic, const std::function<double()>& loss,
                    std::mt19937& rng, GradCheck options) {
  REQUIRE(x.size() == analytic.size());
  std::uniform_int_distribution<std::size_t> pick(0, x.size() - 1);
  const int samples = std::min<int>(options.samples, static_cast<int>(x.size()));
  for (int s = 0; s < samples; ++s) {
    const std::size_t i = pick(rng);
    const float x0 = x[i];
    const float up = x0 + options.h;
    const float down = x0 - options.h;
    x[i] = up;
    const double lp = loss();
    x[i] = down;
    const double lm = loss();
    x[i] = x0;
    // Divide by the step actually taken in float, not the nominal one.
    const double numeric = (lp - lm) / (static_cast<double>(up) - static_cast<double>(down));
    const double a = analytic[i];
    const double tol = options.rtol * std::max(std::fabs(a), std::fabs(numeric)) + options.atol;
    INFO(name << "[" << i << "]: analytic " << a << ", numeric " << numeric << ", tolerance " << tol);
    CHECK(std::fabs(a - numeric) <= tol);
  }
}

}  // namespace cpu_test
