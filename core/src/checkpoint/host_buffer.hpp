// HostBuffer: the checkpoint snapshot's host memory, allocated through the backend
// (Backend::allocate_host: pinned memory on a GPU backend), kept from save to save and
// reallocated only when it must grow.
#pragma once
#include <cstddef>
#include <functional>

namespace trainer {
class Backend;
}

namespace trainer::checkpoint {

class HostBuffer {
 public:
  HostBuffer() = default;
  ~HostBuffer();
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  HostBuffer(HostBuffer&& other) noexcept;
  HostBuffer& operator=(HostBuffer&& other) noexcept;  // frees what this one held

  // Where later allocations come from; null (the default) means malloc. Frees what is held.
  void set_backend(Backend* backend);
  // Room for n floats. Contents are undefined after growing; shrinking keeps the memory.
  void resize(std::size_t n);
  // Grows to n floats and writes zeros over them (so page faults happen now, not later).
  void assign_zeros(std::size_t n);
  void push_back(float v);  // tests build small snapshots value by value

  float* data() { return data_; }
  const float* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void reserve(std::size_t n);
  void release();

  Backend* backend_ = nullptr;
  float* data_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace trainer::checkpoint
