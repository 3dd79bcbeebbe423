// Tensor: a typed, shaped view of memory owned by a backend (CPU or device).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace trainer {

// f64: the few-element accumulators of a step's loss and gradient norm (Backend::accumulate_sum,
// Backend::sum_squares_many); no other op takes it.
enum class DType : std::uint8_t { f32, bf16, i32, f64 };
enum class Device : std::uint8_t { cpu, cuda };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

using Shape = std::vector<std::int64_t>;
std::int64_t shape_numel(const Shape& shape);
std::string shape_string(const Shape& shape);

// A handle: copying a Tensor shares the memory (like a pointer), it never copies data.
// The storage lives as long as any handle or view of it does.
class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<void> storage, void* data, Shape shape, DType dtype, Device device);

  void* data() const { return data_; }
  template <class T> T* data_as() const { return static_cast<T*>(data_); }
  const Shape& shape() const { return shape_; }
  std::int64_t dim(std::size_t i) const { return shape_.at(i); }
  std::int64_t numel() const { return numel_; }
  std::size_t bytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  explicit operator bool() const { return data_ != nullptr; }

  // A view of `shape` starting `element_offset` elements into this tensor; shares storage.
  Tensor view(std::int64_t element_offset, Shape shape) const;
  // The same memory seen with another shape of equal element count.
  Tensor reshaped(Shape shape) const;

 private:
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  Shape shape_;
  std::int64_t numel_ = 0;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

}  // namespace trainer
