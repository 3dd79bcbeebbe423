// OpProfiler: where the GPU time goes, per backend op, for the cuda backend's `profile`
// switch. Each outermost op records a start and an end event on the stream around the work
// it enqueues (ops an op calls internally count as part of it), so host gaps are not booked
// to any op. Totals start at the second loss computation (crossentropy), so start-up
// (parameter upload, cuBLASLt heuristics, first allocations) stays out. Finished ops are
// booked after a sync, before the next op starts (never inside an op's window, where the
// host time would show as GPU idle), and printed as a table by report(). Host C++.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace trainer::gpu {

class OpProfiler {
 public:
  ~OpProfiler();
  void begin(const char* op, cudaStream_t stream);
  void end(cudaStream_t stream);
  // The host waited for the stream (drained it) inside `op`: book at the next op, and count
  // the wait, since each one leaves the GPU idle while the host issues the next work.
  void synced(const char* op) {
    resolve_due_ = true;
    ++waits_[op];
  }
  void resolve();  // books every finished op
  void report(std::FILE* out) const;

 private:
  struct Record {
    const char* op;
    cudaEvent_t start = nullptr, stop = nullptr;
  };
  struct Total {
    double ms = 0;
    long count = 0;
  };
  cudaEvent_t take();

  int depth_ = 0;
  bool resolve_due_ = false;
  int losses_seen_ = 0;
  std::vector<Record> pending_;
  std::vector<cudaEvent_t> free_;
  std::map<std::string, Total> totals_;
  std::map<std::string, long> waits_;  // host waits per op, counted from the same point as totals_
};

// Times one op from construction to destruction (a no-op without a profiler).
class OpTiming {
 public:
  OpTiming(OpProfiler* profiler, const char* op, cudaStream_t stream) : profiler_(profiler), stream_(stream) {
    if (profiler_) profiler_->begin(op, stream_);
  }
  ~OpTiming() {
    if (profiler_) profiler_->end(stream_);
  }
  OpTiming(const OpTiming&) = delete;
  OpTiming& operator=(const OpTiming&) = delete;

 private:
  OpProfiler* profiler_;
  cudaStream_t stream_;
};

}  // namespace trainer::gpu
