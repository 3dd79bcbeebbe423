#include "checkpoint/host_buffer.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "trainer/backend.hpp"

namespace trainer::checkpoint {

HostBuffer::~HostBuffer() { release(); }

HostBuffer::HostBuffer(HostBuffer&& other) noexcept { *this = std::move(other); }

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
  if (this == &other) return *this;
  release();
  backend_ = other.backend_;
  data_ = std::exchange(other.data_, nullptr);
  size_ = std::exchange(other.size_, 0);
  capacity_ = std::exchange(other.capacity_, 0);
  return *this;
}

void HostBuffer::release() {
  if (data_) {
    if (backend_) {
      backend_->free_host(data_);
    } else {
      std::free(data_);
    }
  }
  data_ = nullptr;
  size_ = capacity_ = 0;
}

void HostBuffer::set_backend(Backend* backend) {
  release();
  backend_ = backend;
}

void HostBuffer::reserve(std::size_t n) {
  if (n <= capacity_) return;
  const std::size_t keep = size_;
  void* p = backend_ ? backend_->allocate_host(n * sizeof(float)) : std::malloc(n * sizeof(float));
  if (!p) throw std::bad_alloc();
  if (keep) std::memcpy(p, data_, keep * sizeof(float));
  release();
  data_ = static_cast<float*>(p);
  size_ = keep;
  capacity_ = n;
}

void HostBuffer::resize(std::size_t n) {
  reserve(n);
  size_ = n;
}

void HostBuffer::assign_zeros(std::size_t n) {
  resize(n);
  if (n) std::memset(data_, 0, n * sizeof(float));
}

void HostBuffer::push_back(float v) {
  if (size_ == capacity_) reserve(capacity_ ? 2 * capacity_ : 64);
  data_[size_++] = v;
}

}  // namespace trainer::checkpoint
