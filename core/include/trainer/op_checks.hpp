// OpChecks: argument checks for Backend ops, shared by every backend so that a wrong tensor
// gives the same message whichever backend runs it ("cpu backend: matmul_forward: weight has
// shape [3,4] (12 elements), expected OC*C = 15 elements"). Header-only.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "trainer/tensor.hpp"

namespace trainer {

class OpChecks {
 public:
  // backend: message prefix ("cpu backend"); memory: where its tensors live, for messages.
  constexpr OpChecks(const char* backend, Device device, const char* memory)
      : backend_(backend), device_(device), memory_(memory) {}

  [[noreturn]] void fail(const char* op, const std::string& message) const {
    std::string text = backend_;
    text += ": ";
    text += op;
    text += ": ";
    text += message;
    throw std::invalid_argument(text);
  }

  // Every named dimension must be positive.
  void dims(const char* op, std::initializer_list<std::pair<const char*, std::int64_t>> dims) const {
    for (const auto& [name, value] : dims) {
      if (value <= 0) fail(op, std::string(name) + " = " + std::to_string(value) + " must be positive");
    }
  }

  // Present, on this backend's device, of `dtype`.
  void tensor(const char* op, const char* name, const Tensor& t, DType dtype) const {
    if (!t) fail(op, std::string(name) + " is empty");
    if (t.device() != device_) fail(op, std::string(name) + " is not in " + memory_);
    if (t.dtype() != dtype) {
      fail(op, std::string(name) + " is " + dtype_name(t.dtype()) + ", expected " + dtype_name(dtype));
    }
  }

  // As tensor(), with the element count the dimensions imply; `formula` names it.
  void numel(const char* op, const char* name, const Tensor& t, std::int64_t expected, const char* formula,
             DType dtype = DType::f32) const {
    tensor(op, name, t, dtype);
    if (t.numel() != expected) {
      fail(op, std::string(name) + " has shape " + shape_string(t.shape()) + " (" + std::to_string(t.numel()) +
                   " elements), expected " + formula + " = " + std::to_string(expected) + " elements");
    }
  }

  // An f32 table of any row count: its size must be a whole number of rows of C.
  std::int64_t table_rows(const char* op, const char* name, const Tensor& t, int C) const {
    tensor(op, name, t, DType::f32);
    if (t.numel() == 0 || t.numel() % C != 0) {
      fail(op, std::string(name) + " has shape " + shape_string(t.shape()) +
                   ", not a whole number of rows of C = " + std::to_string(C));
    }
    return t.numel() / C;
  }

 private:
  const char* backend_;
  Device device_;
  const char* memory_;
};

}  // namespace trainer
