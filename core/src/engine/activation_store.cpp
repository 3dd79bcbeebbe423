#include "engine/activation_store.hpp"

#include <stdexcept>

namespace trainer {

BlockActivationStore::BlockActivationStore(Backend& backend, std::vector<ActivationSpec> specs,
                                           MemoryMeter& saved, MemoryMeter& workspace)
    : backend_(backend), specs_(std::move(specs)), keep_(specs_.size(), true),
      slots_(specs_.size()), held_at_pass_start_(specs_.size(), false), saved_(saved),
      workspace_(workspace) {}

BlockActivationStore::~BlockActivationStore() { release_all(); }

std::size_t BlockActivationStore::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name == name) return i;
  }
  throw std::invalid_argument("activation '" + std::string(name) +
                              "' is not declared by the model's block_activations()");
}

void BlockActivationStore::free_slot(std::size_t i) {
  if (slots_[i]) {
    saved_.sub(slots_[i].bytes());
    slots_[i] = Tensor();
  }
}

void BlockActivationStore::begin_pass(bool recompute) {
  recomputing_ = recompute;
  for (std::size_t i = 0; i < slots_.size(); ++i) held_at_pass_start_[i] = static_cast<bool>(slots_[i]);
}

void BlockActivationStore::end_pass() {
  for (auto& t : scratch_) workspace_.sub(t.bytes());
  scratch_.clear();
  recomputing_ = false;
}

void BlockActivationStore::end_forward() {
  end_pass();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (!keep_[i]) free_slot(i);
  }
}

void BlockActivationStore::release_all() {
  end_pass();
  for (std::size_t i = 0; i < slots_.size(); ++i) free_slot(i);
}

bool BlockActivationStore::all_held() const {
  for (const auto& t : slots_) {
    if (!t) return false;
  }
  return true;
}

Tensor BlockActivationStore::get(std::string_view name) {
  const auto i = index_of(name);
  if (!slots_[i]) {
    slots_[i] = backend_.allocate(specs_[i].shape, specs_[i].dtype);
    saved_.add(slots_[i].bytes());
  }
  return slots_[i];
}

bool BlockActivationStore::missing(std::initializer_list<std::string_view> names) const {
  for (auto name : names) {
    if (!held_at_pass_start_[index_of(name)]) return true;
  }
  return false;
}

Tensor BlockActivationStore::scratch(const Shape& shape, DType dtype) {
  scratch_.push_back(backend_.allocate(shape, dtype));
  workspace_.add(scratch_.back().bytes());
  return scratch_.back();
}

}  // namespace trainer
