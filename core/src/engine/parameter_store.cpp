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
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (specs_[j].name == specs_[i].name) throw std::invalid_argument("duplicate parameter name '" + specs_[i].name + "'");
    }
    if (units_.empty() || units_.back().block != specs_[i].block) {
      units_.push_back({specs_[i].block, i, i, numel_, 0});
    }
    auto& u = units_.back();
    u.last = i + 1;
    offsets_.push_back(numel_);
    unit_of_.push_back(units_.size() - 1);
    const auto n = shape_numel(specs_[i].shape);
    u.numel += n;
    numel_ += n;
  }
  unit_values_.resize(units_.size());
  unit_grads_.resize(units_.size());
  values_.resize(specs_.size());
  grads_.resize(specs_.size());
  for (std::size_t u = 0; u < units_.size(); ++u) {
    materialize_values(u);
    backend_.fill_zero(unit_values_[u]);
    materialize_grads(u);
  }
}

std::optional<std::size_t> ParameterStore::find(const std::string& name) const {
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name == name) return i;
  }
  return std::nullopt;
}

void ParameterStore::account(std::int64_t delta) {
  resident_bytes_ = static_cast<std::size_t>(static_cast<std::int64_t>(resident_bytes_) + delta);
  peak_resident_bytes_ = std::max(peak_resident_bytes_, resident_bytes_);
}

void ParameterStore::bind_views(std::size_t u) {
  const auto& unit = units_[u];
  for (std::size_t i = unit.first; i < unit.last; ++i) {
    const auto local = offsets_[i] - unit.offset;
    values_[i] = unit_values_[u] ? unit_values_[u].view(local, specs_[i].shape) : Tensor();
    grads_[i] = unit_grads_[u] ? unit_grads_[u].view(local, specs_[i].shape) : Tensor();
    if (!compute_values_.empty()) {
      compute_values_[i] = unit_compute_[u] ? unit_compute_[u].view(local, specs_[i].shape) : Tensor();
    }
  }
}

void ParameterStore::set_compute_dtype(DType dtype) {
  if (dtype != DType::f32 && dtype != DType::bf16) {
    throw std::invalid_argument(std::string("ParameterStore: compute dtype must be f32 or bf16, not ") + dtype_name(dtype));
  }
  for (std::size_t u = 0; u < units_.size(); ++u) {
    if (!unit_compute_.empty() && unit_compute_[u]) account(-static_cast<std::int64_t>(unit_compute_[u].bytes()));
  }
  compute_dtype_ = dtype;
  unit_compute_.assign(units_.size(), Tensor());
  compute_values_.assign(specs_.size(), Tensor());
  compute_fresh_.assign(units_.size(), false);
  if (dtype == DType::f32) {
    unit_compute_.clear();
    compute_values_.clear();
    return;
  }
  for (std::size_t u = 0; u < units_.size(); ++u) {
    if (unit_values_[u]) materialize_compute(u);
    bind_views(u);
  }
}

void ParameterStore::materialize_compute(std::size_t u) {
  if (compute_dtype_ == DType::f32 || unit_compute_[u]) return;
  unit_compute_[u] = backend_.allocate({units_[u].numel}, compute_dtype_);
  account(static_cast<std::int64_t>(unit_compute_[u].bytes()));
  compute_fresh_[u] = false;
}

void ParameterStore::refresh_compute(std::size_t u) {
  if (compute_dtype_ == DType::f32 || compute_fresh_.at(u) || !unit_values_.at(u)) return;
  backend_.convert(unit_compute_[u], unit_values_[u]);
  compute_fresh_[u] = true;
}

void ParameterStore::refresh_compute_block(int block) {
  if (compute_dtype_ == DType::f32) return;
  for (std::size_t u = 0; u < units_.size(); ++u) {
    if (units_[u].block == block) refresh_compute(u);
  }
}

void ParameterStore::refresh_compute_resident() {
  for (std::size_t u = 0; u < units_.size(); ++u) refresh_compute(u);
}

void ParameterStore::invalidate_compute(const std::vector<bool>& written) {
  for (std::size_t u = 0; u < compute_fresh_.size(); ++u) compute_fresh_[u] = u < written.size() && written[u];
}

void ParameterStore::materialize_values(std::size_t u) {
  if (unit_values_.at(u)) return;
  unit_values_[u] = backend_.allocate({units_[u].numel}, DType::f32);
  account(static_cast<std::int64_t>(unit_values_[u].bytes()));
  if (compute_dtype_ != DType::f32) materialize_compute(u);
  bind_views(u);
}

void ParameterStore::release_values(std::size_t u) {
  if (!unit_values_.at(u)) return;
  account(-static_cast<std::int64_t>(unit_values_[u].bytes()));
  unit_values_[u] = Tensor();
  if (compute_dtype_ != DType::f32 && unit_compute_[u]) {
    account(-static_cast<std::int64_t>(unit_compute_[u].bytes()));
    unit_compute_[u] = Tensor();
    compute_fresh_[u] = false;
  }
  bind_views(u);
}

void ParameterStore::materialize_grads(std::size_t u) {
  if (unit_grads_.at(u)) return;
  unit_grads_[u] = backend_.allocate({units_[u].numel}, DType::f32);
  backend_.fill_zero(unit_grads_[u]);
  account(static_cast<std::int64_t>(unit_grads_[u].bytes()));
  bind_views(u);
}

void ParameterStore::release_grads(std::size_t u) {
  if (!unit_grads_.at(u)) return;
  account(-static_cast<std::int64_t>(unit_grads_[u].bytes()));
  unit_grads_[u] = Tensor();
  bind_views(u);
}

std::vector<float> ParameterStore::initial_values(std::size_t i, std::uint64_t seed) const {
  const auto& s = specs_.at(i);
  std::vector<float> host(static_cast<std::size_t>(shape_numel(s.shape)));
  switch (s.init) {
    case ParameterSpec::Init::zeros: std::fill(host.begin(), host.end(), 0.0f); break;
    case ParameterSpec::Init::ones: std::fill(host.begin(), host.end(), 1.0f); break;
    case ParameterSpec::Init::normal: {
      const RngKey key{seed, fnv1a(s.name)};
      // A tensor-parallel shard draws the elements of its slice of the global tensor.
      std::int64_t outer = 1, extent = 1, inner = 1, first = 0;
      if (!s.global.empty()) {
        const auto d = static_cast<std::size_t>(s.split_dim);
        for (std::size_t k = 0; k < d; ++k) outer *= s.global[k];
        for (std::size_t k = d + 1; k < s.global.size(); ++k) inner *= s.global[k];
        extent = s.global[d] / s.shard_count;
        first = extent * s.shard_index;
        if (outer * extent * inner != static_cast<std::int64_t>(host.size())) {
          throw std::logic_error("parameter '" + s.name + "': shape " + shape_string(s.shape) +
                                 " is not one of " + std::to_string(s.shard_count) + " parts of " +
                                 shape_string(s.global));
        }
      }
      for (std::size_t j = 0; j < host.size(); ++j) {
        std::size_t g = j;
        if (!s.global.empty()) {
          const auto local = static_cast<std::int64_t>(j);
          const std::int64_t o = local / (extent * inner), e = (local / inner) % extent, k = local % inner;
          g = static_cast<std::size_t>((o * s.global[static_cast<std::size_t>(s.split_dim)] + first + e) * inner + k);
        }
        // Box-Muller on two counter draws: element g depends on (seed, name, g) only.
        const double u1 = open_unit(key, 2 * g), u2 = open_unit(key, 2 * g + 1);
        const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
        host[j] = static_cast<float>(z * s.init_std);
      }
      break;
    }
  }
  return host;
}

void ParameterStore::initialize(std::uint64_t seed) {
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    if (!values_[i]) throw std::logic_error("ParameterStore::initialize: unit of '" + specs_[i].name + "' is released");
    const auto host = initial_values(i, seed);
    backend_.copy_from_host(values_[i], host.data());
  }
}

void ParameterStore::zero_grads() {
  for (auto& g : unit_grads_) {
    if (g) backend_.fill_zero(g);
  }
}

namespace {
std::vector<float> gather_host(Backend& backend, const std::vector<Tensor>& units, std::int64_t numel) {
  std::vector<float> host(static_cast<std::size_t>(numel));
  std::size_t at = 0;
  for (const auto& t : units) {
    if (!t) throw std::logic_error("ParameterStore: a released unit cannot be copied to the host");
    backend.copy_to_host(host.data() + at, t);
    at += static_cast<std::size_t>(t.numel());
  }
  return host;
}
}  // namespace

std::vector<float> ParameterStore::values_to_host() const { return gather_host(backend_, unit_values_, numel_); }
std::vector<float> ParameterStore::grads_to_host() const { return gather_host(backend_, unit_grads_, numel_); }

}  // namespace trainer
