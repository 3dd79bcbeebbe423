#include "op_profiler.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace trainer::gpu {

OpProfiler::~OpProfiler() {
  for (auto& r : pending_) {
    if (r.start) cudaEventDestroy(r.start);
    if (r.stop) cudaEventDestroy(r.stop);
  }
  for (auto e : free_) cudaEventDestroy(e);
}

cudaEvent_t OpProfiler::take() {
  if (!free_.empty()) {
    cudaEvent_t e = free_.back();
    free_.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  return cudaEventCreate(&e) == cudaSuccess ? e : nullptr;  // best effort: never fail an op
}

void OpProfiler::begin(const char* op, cudaStream_t stream) {
  if (depth_++ > 0) return;  // inside another op: part of it
  // Book finished ops here, between ops, so the host time it takes lands in no op's window:
  // after a sync (everything recorded is done), or when very many are waiting.
  if (resolve_due_ || pending_.size() >= (1u << 16)) {
    resolve();
    resolve_due_ = false;
  }
  if (std::strcmp(op, "crossentropy_forward_backward") == 0 && ++losses_seen_ == 2) {
    totals_.clear();
    waits_.clear();
  }
  Record r{op, take(), nullptr};
  if (r.start) cudaEventRecord(r.start, stream);
  pending_.push_back(r);
}

void OpProfiler::end(cudaStream_t stream) {
  if (--depth_ > 0 || pending_.empty()) return;
  Record& r = pending_.back();
  r.stop = take();
  if (r.stop) cudaEventRecord(r.stop, stream);
}

void OpProfiler::resolve() {
  std::vector<Record> open;
  for (auto& r : pending_) {
    if (!r.stop || cudaEventQuery(r.stop) != cudaSuccess) {
      open.push_back(r);
      continue;
    }
    float ms = 0;
    if (r.start && cudaEventElapsedTime(&ms, r.start, r.stop) == cudaSuccess) {
      auto& t = totals_[r.op];
      t.ms += ms;
      ++t.count;
    }
    if (r.start) free_.push_back(r.start);
    free_.push_back(r.stop);
  }
  pending_ = std::move(open);
}

void OpProfiler::report(std::FILE* out) const {
  std::vector<std::pair<std::string, Total>> rows(totals_.begin(), totals_.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  double all = 0;
  for (const auto& r : rows) all += r.second.ms;
  std::fprintf(out, "cuda backend profile: GPU time inside each op (start to end event), %.1f ms in all\n", all);
  std::fprintf(out, "%-34s %12s %8s %10s %7s\n", "op", "total ms", "calls", "ms/call", "share");
  for (const auto& [op, t] : rows) {
    std::fprintf(out, "%-34s %12.2f %8ld %10.4f %6.1f%%\n", op.c_str(), t.ms, t.count,
                 t.count ? t.ms / static_cast<double>(t.count) : 0.0, all > 0 ? 100.0 * t.ms / all : 0.0);
  }
  long waits = 0;
  std::string by_op;
  for (const auto& [op, n] : waits_) {
    waits += n;
    by_op += ' ';
    by_op += op;
    by_op += ' ';
    by_op += std::to_string(n);
  }
  std::fprintf(out, "host waits for the stream (each drains the GPU queue): %ld in the same span;%s\n", waits,
               by_op.c_str());
}

}  // namespace trainer::gpu
