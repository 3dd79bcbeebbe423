// DevicePool (the cuda backend's caching device allocator) and Scratch (a pool block for the
// duration of one op). Host C++ (no kernels).
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace trainer::gpu {

// Caching device allocator. Sizes are rounded to classes (multiples of 512 B up to 1 MiB,
// then quarter powers of two, so at most 25% is wasted); a freed block goes back to its
// class's free list and is reused by the next request of that class. Blocks are returned on
// the host as soon as the last Tensor handle goes; that is safe because all work runs on one
// stream, so a later user's kernels are ordered after the earlier user's. cudaFree happens
// only when the pool dies (the backend and every tensor gone), or once to retry an
// allocation that ran out of memory. Shared with each Tensor's deleter so tensors may
// outlive the backend.
class DevicePool {
 public:
  explicit DevicePool(int device) : device_(device) {}
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  ~DevicePool() {
    // Errors are ignored here: at process exit the CUDA runtime may already be shutting down.
    if (cudaSetDevice(device_) != cudaSuccess) return;
    for (auto& [cls, blocks] : free_) {
      for (void* p : blocks) cudaFree(p);
    }
  }

  static std::size_t size_class(std::size_t bytes) {
    constexpr std::size_t kSmall = 1 << 20;
    if (bytes <= kSmall) return bytes <= 512 ? 512 : (bytes + 511) / 512 * 512;
    std::size_t top = 1;
    while (top * 2 <= bytes) top *= 2;
    const std::size_t step = top / 4;
    return (bytes + step - 1) / step * step;
  }

  void* take(std::size_t cls, const char* op) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t status = cudaMalloc(&p, cls);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the sticky-free error before retrying
      release_cached();
      status = cudaMalloc(&p, cls);
    }
    if (status != cudaSuccess) {
      throw std::runtime_error(std::string("cuda backend: ") + op + ": cudaMalloc of " + std::to_string(cls) +
                               " bytes failed (" + std::to_string(reserved_ >> 20) + " MiB already reserved): " +
                               cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    reserved_ += cls;
    peak_reserved_ = std::max(peak_reserved_, reserved_);
    return p;
  }

  void give(void* p, std::size_t cls) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_[cls].push_back(p);
  }

 private:
  void release_cached() {
    cudaDeviceSynchronize();  // cached blocks may still be in use by queued work
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [cls, blocks] : free_) {
      for (void* p : blocks) {
        cudaFree(p);
        reserved_ -= cls;
      }
      blocks.clear();
    }
  }

  int device_;
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t reserved_ = 0;
  std::size_t peak_reserved_ = 0;

 public:
  std::size_t peak_reserved() const { return peak_reserved_; }
};

// A scratch block for the duration of one op; returned to the pool at scope exit (safe for
// the same single-stream reason as tensors).
class Scratch {
 public:
  Scratch(std::shared_ptr<DevicePool> pool, std::size_t bytes, const char* op)
      : pool_(std::move(pool)), cls_(DevicePool::size_class(bytes)), ptr_(pool_->take(cls_, op)) {}
  ~Scratch() { pool_->give(ptr_, cls_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T> T* as() const { return static_cast<T*>(ptr_); }

 private:
  std::shared_ptr<DevicePool> pool_;
  std::size_t cls_;
  void* ptr_;
};

}  // namespace trainer::gpu
