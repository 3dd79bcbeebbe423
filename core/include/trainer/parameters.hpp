// Parameters: what a model declares (ParameterSpec) and where the engine keeps them
// (ParameterStore: one flat buffer of values and one of gradients, a view per parameter,
// so that buckets, shards and checkpoints address contiguous ranges).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/tensor.hpp"

namespace trainer {

struct ParameterSpec {
  enum class Init { normal, zeros, ones };
  std::string name;   // unique, stable across layouts: checkpoints and init key on it
  Shape shape;
  int block = -1;     // index of the block that owns it; -1 for embedding/head parameters
  bool weight_decay = false;
  Init init = Init::zeros;
  float init_std = 0.0f;  // for Init::normal
};

class ParameterStore {
 public:
  ParameterStore(Backend& backend, std::vector<ParameterSpec> specs);

  std::size_t size() const { return specs_.size(); }
  const ParameterSpec& spec(std::size_t i) const { return specs_.at(i); }
  const std::vector<ParameterSpec>& specs() const { return specs_; }
  std::optional<std::size_t> find(const std::string& name) const;

  Tensor value(std::size_t i) const { return values_.at(i); }
  Tensor grad(std::size_t i) const { return grads_.at(i); }
  std::int64_t offset(std::size_t i) const { return offsets_.at(i); }  // in elements
  const Tensor& flat_values() const { return flat_values_; }
  const Tensor& flat_grads() const { return flat_grads_; }
  std::int64_t numel() const { return numel_; }

  // Values from a counter RNG keyed on (seed, parameter name, element): the same
  // parameter gets the same values whatever the layout or the order of creation.
  void initialize(std::uint64_t seed);
  void zero_grads();

 private:
  Backend& backend_;
  std::vector<ParameterSpec> specs_;
  std::vector<std::int64_t> offsets_;
  std::int64_t numel_ = 0;
  Tensor flat_values_, flat_grads_;
  std::vector<Tensor> values_, grads_;
};

}  // namespace trainer
