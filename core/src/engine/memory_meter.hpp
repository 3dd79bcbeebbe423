// MemoryMeter: live and peak bytes of one category of memory (saved activations,
// workspace), as the engine allocates and frees it.
#pragma once
#include <algorithm>
#include <cstddef>

namespace trainer {

class MemoryMeter {
 public:
  void add(std::size_t bytes) {
    live_ += bytes;
    peak_ = std::max(peak_, live_);
  }
  void sub(std::size_t bytes) { live_ -= std::min(bytes, live_); }
  void reset_peak() { peak_ = live_; }
  std::size_t live() const { return live_; }
  std::size_t peak() const { return peak_; }

 private:
  std::size_t live_ = 0;
  std::size_t peak_ = 0;
};

}  // namespace trainer
