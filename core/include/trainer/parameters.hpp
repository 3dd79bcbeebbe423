// Parameters: what a model declares (ParameterSpec) and where the engine keeps them
// (ParameterStore). Consecutive parameters of the same block form a unit, stored in one
// contiguous buffer of values and one of gradients: units are what gradient buckets,
// ZeRO shards and FSDP gathers address, and a sharded layout may release a unit's full
// buffers while it holds only its shard.
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
  // Tensor parallel (tensor_parallel.hpp): this rank holds part `shard_index` of
  // `shard_count` equal parts of a tensor of shape `global`, split along `split_dim`.
  // Empty `global`: the parameter is whole. initialize() gives a shard its slice's values of
  // the global tensor, so every tp degree starts from the same model.
  Shape global;
  int split_dim = 0;
  int shard_index = 0, shard_count = 1;
  // Share of its squared gradient this rank counts in the gradient norm: 1/tp for a
  // parameter every tp rank holds whole, so that the tp group's sum counts it once.
  float grad_norm_share = 1.0f;
};

struct ParameterUnit {
  int block = -1;
  std::size_t first = 0, last = 0;  // parameter indices [first, last)
  std::int64_t offset = 0;          // elements before this unit, over all units
  std::int64_t numel = 0;
};

class ParameterStore {
 public:
  // Allocates every unit's values and gradients (gradients zeroed).
  ParameterStore(Backend& backend, std::vector<ParameterSpec> specs);

  std::size_t size() const { return specs_.size(); }
  const ParameterSpec& spec(std::size_t i) const { return specs_.at(i); }
  const std::vector<ParameterSpec>& specs() const { return specs_; }
  std::optional<std::size_t> find(const std::string& name) const;
  std::int64_t numel() const { return numel_; }
  std::int64_t offset(std::size_t i) const { return offsets_.at(i); }  // over all units

  // Views; empty while their unit is released.
  Tensor value(std::size_t i) const { return values_.at(i); }
  Tensor grad(std::size_t i) const { return grads_.at(i); }

  // Mixed precision: with a bf16 compute dtype every resident unit also has a bf16 copy of
  // its f32 (master) values, which the model's forward and backward read. The engine
  // refreshes a unit's copy before the unit is used (refresh_compute) and marks all copies
  // stale after the values change (invalidate_compute: after an optimizer step or a load).
  // With f32 (the default) compute_value(i) is value(i) and the rest does nothing.
  void set_compute_dtype(DType dtype);
  DType compute_dtype() const { return compute_dtype_; }
  Tensor compute_value(std::size_t i) const {
    return compute_dtype_ == DType::f32 ? values_.at(i) : compute_values_.at(i);
  }
  void refresh_compute(std::size_t u);    // no-op if fresh or released
  void refresh_compute_block(int block);  // every unit of that block (-1: the non-block units)
  void refresh_compute_resident();        // every unit whose values are present
  // Marks every copy stale, except units whose `written[u]` is true (copies an optimizer
  // rewrote in its step; written may be empty).
  void invalidate_compute(const std::vector<bool>& written = {});

  const std::vector<ParameterUnit>& units() const { return units_; }
  std::size_t unit_of(std::size_t param) const { return unit_of_.at(param); }
  const Tensor& unit_values(std::size_t u) const { return unit_values_.at(u); }
  const Tensor& unit_grads(std::size_t u) const { return unit_grads_.at(u); }
  void materialize_values(std::size_t u);  // contents undefined until written
  void release_values(std::size_t u);
  void materialize_grads(std::size_t u);   // zeroed
  void release_grads(std::size_t u);

  // Values from a counter RNG keyed on (seed, parameter name, element): the same
  // parameter gets the same values whatever the layout or the order of creation.
  void initialize(std::uint64_t seed);
  // The values of parameter i as initialize() makes them, without touching the store.
  std::vector<float> initial_values(std::size_t i, std::uint64_t seed) const;
  void zero_grads();  // resident units

  // Every resident unit in order, as one host vector of numel() floats (tests, checksums).
  std::vector<float> values_to_host() const;
  std::vector<float> grads_to_host() const;

  std::size_t resident_bytes() const { return resident_bytes_; }
  std::size_t peak_resident_bytes() const { return peak_resident_bytes_; }
  // Start measuring the peak afresh (after a layout has released what it shards).
  void reset_peak_resident() { peak_resident_bytes_ = resident_bytes_; }

 private:
  void bind_views(std::size_t u);
  void materialize_compute(std::size_t u);
  void account(std::int64_t delta);

  Backend& backend_;
  std::vector<ParameterSpec> specs_;
  std::vector<std::int64_t> offsets_;
  std::vector<std::size_t> unit_of_;
  std::vector<ParameterUnit> units_;
  std::vector<Tensor> unit_values_, unit_grads_;
  std::vector<Tensor> values_, grads_;
  DType compute_dtype_ = DType::f32;
  std::vector<Tensor> unit_compute_, compute_values_;
  std::vector<bool> compute_fresh_;
  std::int64_t numel_ = 0;
  std::size_t resident_bytes_ = 0, peak_resident_bytes_ = 0;
};

}  // namespace trainer
