#include <cmath>
#include <numbers>
#include <stdexcept>

#include "trainer/parameters.hpp"
#include "trainer/rng.hpp"

namespace trainer {
namespace {

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

double open_unit(RngKey key, std::uint64_t index) {  // in (0, 1): safe for log()
  return (static_cast<double>(rng_bits(key, index) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

}  // namespace

ParameterStore::ParameterStore(Backend& backend, std::vector<ParameterSpec> specs)
    : backend_(backend), specs_(std::move(specs)) {
  for (const auto& s : specs_) {
    for (const auto& other : specs_) {
      if (&other != &s && other.name == s.name) {
        throw std::invalid_argument("duplicate parameter name '" + s.name + "'");
      }
    }
    offsets_.push_back(numel_);
    numel_ += shape_numel(s.shape);
  }
  flat_values_ = backend_.allocate({numel_}, DType::f32);
  flat_grads_ = backend_.allocate({numel_}, DType::f32);
  backend_.fill_zero(flat_values_);
  backend_.fill_zero(flat_grads_);
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    values_.push_back(flat_values_.view(offsets_[i], specs_[i].shape));
    grads_.push_back(flat_grads_.view(offsets_[i], specs_[i].shape));
  }
}

std::optional<std::size_t> ParameterStore::find(const std::string& name) const {
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name == name) return i;
  }
  return std::nullopt;
}

void ParameterStore::initialize(std::uint64_t seed) {
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const auto& s = specs_[i];
    std::vector<float> host(static_cast<std::size_t>(shape_numel(s.shape)));
    switch (s.init) {
      case ParameterSpec::Init::zeros: std::fill(host.begin(), host.end(), 0.0f); break;
      case ParameterSpec::Init::ones: std::fill(host.begin(), host.end(), 1.0f); break;
      case ParameterSpec::Init::normal: {
        const RngKey key{seed, fnv1a(s.name)};
        for (std::size_t j = 0; j < host.size(); ++j) {
          // Box-Muller on two counter draws: element j depends on (seed, name, j) only.
          const double u1 = open_unit(key, 2 * j), u2 = open_unit(key, 2 * j + 1);
          const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
          host[j] = static_cast<float>(z * s.init_std);
        }
        break;
      }
    }
    backend_.copy_from_host(values_[i], host.data());
  }
}

void ParameterStore::zero_grads() { backend_.fill_zero(flat_grads_); }

}  // namespace trainer
