#include "trainer/tensor.hpp"

#include <stdexcept>

namespace trainer {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::f64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
    case DType::f64: return "f64";
  }
  return "?";
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Tensor::Tensor(std::shared_ptr<void> storage, void* data, Shape shape, DType dtype, Device device)
    : storage_(std::move(storage)), data_(data), shape_(std::move(shape)),
      numel_(shape_numel(shape_)), dtype_(dtype), device_(device) {}

Tensor Tensor::view(std::int64_t element_offset, Shape shape) const {
  const auto n = shape_numel(shape);
  if (element_offset < 0 || element_offset + n > numel_) {
    throw std::out_of_range("Tensor::view: " + shape_string(shape) + " at offset " +
                            std::to_string(element_offset) + " exceeds " + shape_string(shape_));
  }
  auto* base = static_cast<char*>(data_) + element_offset * static_cast<std::int64_t>(dtype_size(dtype_));
  return Tensor(storage_, base, std::move(shape), dtype_, device_);
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel_) {
    throw std::invalid_argument("Tensor::reshaped: " + shape_string(shape) + " does not match " +
                                shape_string(shape_));
  }
  return Tensor(storage_, data_, std::move(shape), dtype_, device_);
}

}  // namespace trainer
