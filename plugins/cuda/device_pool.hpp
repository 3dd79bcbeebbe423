// DevicePool (the cuda backend's caching device allocator) and Scratch (a pool block for the
// duration of one op). Host C++ (no kernels).
#pragma once
#include <cuda_runtime_api.h>

#include "block_arena.hpp"

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

// Caching device allocator. Blocks up to 1 MiB come in classes (multiples of 512 B), each
// class with its own free list; larger ones are cut from big segments by a BlockArena (best
// fit, split and merge), which wastes almost nothing on the large activations. A block goes
// back on the host as soon as the last Tensor handle goes; that is safe because all work runs
// on one stream, so a later user's kernels are ordered after the earlier user's. cudaFree
// happens only when the pool dies (the backend and every tensor gone), or to retry an
// allocation that ran out of memory. Shared with each Tensor's deleter so tensors may
// outlive the backend.
class DevicePool {
 public:
  static constexpr std::size_t kSmall = std::size_t{1} << 20;

  explicit DevicePool(int device)
      : device_(device),
        large_([](std::size_t bytes) -> void* {
                 void* p = nullptr;
                 if (cudaMalloc(&p, bytes) == cudaSuccess) return p;
                 cudaGetLastError();  // clear the error: the arena retries after releasing
                 return nullptr;
               },
               [](void* p) { cudaFree(p); }) {}
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  ~DevicePool() {
    // Errors are ignored here: at process exit the CUDA runtime may already be shutting down.
    if (cudaSetDevice(device_) != cudaSuccess) return;
    for (auto& [cls, blocks] : free_) {
      for (void* p : blocks) cudaFree(p);
    }
  }

  // What a request of `bytes` occupies: its class (small) or its arena block size (large).
  static std::size_t size_class(std::size_t bytes) {
    if (bytes <= kSmall) return bytes <= 512 ? 512 : (bytes + 511) / 512 * 512;
    return BlockArena::rounded(bytes);
  }

  void* take(std::size_t cls, const char* op) {
    if (cls > kSmall) return take_large(cls, op);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        note_live(cls);
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
    if (status != cudaSuccess) fail(op, cls, std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status));
    std::lock_guard<std::mutex> lock(mutex_);
    small_reserved_ += cls;
    note_live(cls);
    return p;
  }

  void give(void* p, std::size_t cls) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cls > kSmall) {
      large_.release(p);
    } else {
      free_[cls].push_back(p);
      small_live_ -= cls;
    }
  }

  // Peaks of the bytes held from CUDA and of the bytes in blocks handed out.
  std::size_t peak_reserved() const { return peak_reserved_; }
  std::size_t peak_live() const { return peak_live_; }

 private:
  void* take_large(std::size_t cls, const char* op) {
    std::unique_lock<std::mutex> lock(mutex_);
    void* p = large_.allocate(cls);
    if (!p) {
      lock.unlock();
      release_cached();
      lock.lock();
      p = large_.allocate(cls);
    }
    if (!p) fail(op, cls, "cudaErrorMemoryAllocation: out of memory");
    note_live(0);
    return p;
  }

  // Called under the mutex after a take: updates the peaks.
  void note_live(std::size_t small_bytes) {
    small_live_ += small_bytes;
    peak_live_ = std::max(peak_live_, small_live_ + large_.live());
    peak_reserved_ = std::max(peak_reserved_, small_reserved_ + large_.reserved());
  }

  [[noreturn]] void fail(const char* op, std::size_t bytes, const std::string& why) {
    const std::size_t reserved = small_reserved_ + large_.reserved();
    throw std::runtime_error(std::string("cuda backend: ") + op + ": allocating " + std::to_string(bytes) +
                             " bytes failed (" + std::to_string(reserved >> 20) + " MiB already reserved): " + why);
  }

  void release_cached() {
    cudaDeviceSynchronize();  // cached blocks may still be in use by queued work
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [cls, blocks] : free_) {
      for (void* p : blocks) {
        cudaFree(p);
        small_reserved_ -= cls;
      }
      blocks.clear();
    }
    large_.release_free_segments();
  }

  int device_;
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  BlockArena large_;
  std::size_t small_reserved_ = 0, small_live_ = 0;
  std::size_t peak_reserved_ = 0, peak_live_ = 0;
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
