// BlockActivationStore: the engine's BlockActivations for one block and one micro-batch.
// It applies the recompute policy's keep-set at the end of forward and meters what is
// saved (kept or recomputed for backward) apart from short-lived workspace.
#pragma once
#include <string>
#include <vector>

#include "engine/memory_meter.hpp"
#include "trainer/backend.hpp"
#include "trainer/model.hpp"

namespace trainer {

class BlockActivationStore final : public BlockActivations {
 public:
  BlockActivationStore(Backend& backend, std::vector<ActivationSpec> specs, MemoryMeter& saved,
                       MemoryMeter& workspace);
  ~BlockActivationStore() override;
  BlockActivationStore(const BlockActivationStore&) = delete;
  BlockActivationStore& operator=(const BlockActivationStore&) = delete;

  // One flag per spec; activations not kept are freed by end_forward().
  void set_keep(std::vector<bool> keep) { keep_ = std::move(keep); }
  const std::vector<ActivationSpec>& specs() const { return specs_; }

  void begin_pass(bool recompute);
  void end_forward();    // frees workspace and every activation the policy drops
  void end_pass();       // frees workspace only
  void release_all();    // after backward: frees everything
  bool all_held() const;  // nothing to recompute before backward

  Tensor get(std::string_view name) override;
  bool missing(std::initializer_list<std::string_view> names) const override;
  bool recomputing() const override { return recomputing_; }
  Tensor scratch(const Shape& shape, DType dtype) override;

 private:
  std::size_t index_of(std::string_view name) const;
  void free_slot(std::size_t i);

  Backend& backend_;
  std::vector<ActivationSpec> specs_;
  std::vector<bool> keep_;
  std::vector<Tensor> slots_;
  std::vector<bool> held_at_pass_start_;
  std::vector<Tensor> scratch_;
  MemoryMeter& saved_;
  MemoryMeter& workspace_;
  bool recomputing_ = false;
};

}  // namespace trainer
