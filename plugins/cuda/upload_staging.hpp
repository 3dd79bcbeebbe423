// UploadStaging: small host-to-device copies (a micro-batch's tokens and targets, scalars)
// through a ring of page-locked slots, so that copy_from_host need not wait for the stream.
// The caller's bytes are copied into a slot at once (its buffer is free when the call
// returns) and the device copy is queued from there; a slot is reused only after its previous
// copy ran (an event per slot), which waits at most for work queued kSlots uploads ago.
// Host C++ (no kernels).
#pragma once
#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <mutex>

namespace trainer::gpu {

class UploadStaging {
 public:
  static constexpr std::size_t kSlotBytes = std::size_t{1} << 20;  // larger copies are not staged
  static constexpr int kSlots = 8;

  UploadStaging() = default;
  UploadStaging(const UploadStaging&) = delete;
  UploadStaging& operator=(const UploadStaging&) = delete;
  // Waits for the copies still reading the slots, then frees them (errors ignored: this may
  // run while the CUDA runtime shuts down).
  ~UploadStaging() {
    for (auto& s : slots_) {
      if (s.event) {
        cudaEventSynchronize(s.event);
        cudaEventDestroy(s.event);
      }
      if (s.host) cudaFreeHost(s.host);
    }
  }

  // Queues dst <- src (bytes at most kSlotBytes) on `stream`; the first failing CUDA status.
  cudaError_t upload(void* dst, const void* src, std::size_t bytes, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    Slot& s = slots_[static_cast<std::size_t>(next_)];
    next_ = (next_ + 1) % kSlots;
    cudaError_t status = cudaSuccess;
    if (s.used) {
      status = cudaEventSynchronize(s.event);  // the slot's previous copy has read it
    } else {
      if (!s.event) status = cudaEventCreateWithFlags(&s.event, cudaEventDisableTiming);
      if (status == cudaSuccess && !s.host) status = cudaHostAlloc(&s.host, kSlotBytes, cudaHostAllocDefault);
    }
    if (status != cudaSuccess) return status;
    std::memcpy(s.host, src, bytes);
    status = cudaMemcpyAsync(dst, s.host, bytes, cudaMemcpyHostToDevice, stream);
    if (status == cudaSuccess) status = cudaEventRecord(s.event, stream);
    s.used = status == cudaSuccess;
    return status;
  }

 private:
  struct Slot {
    void* host = nullptr;
    cudaEvent_t event = nullptr;
    bool used = false;  // an event was recorded after the slot's last copy
  };
  std::mutex mutex_;
  std::array<Slot, kSlots> slots_{};
  int next_ = 0;
};

}  // namespace trainer::gpu
