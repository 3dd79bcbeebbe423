#include "gloo_communicator.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/context.h>
#include <gloo/transport/unbound_buffer.h>
#include <gloo/types.h>

namespace trainer::gloo_plugin {
namespace {

// Slot prefixes of our own point-to-point traffic; gloo's collectives use 0x01..0x08 in the
// top byte of a slot, so these never match one of their messages.
constexpr std::uint8_t kReduceScatterSlotPrefix = 0x40;
constexpr std::uint8_t kPointToPointSlotPrefix = 0x41;

using ReduceFn = void (*)(void*, const void*, const void*, std::size_t);

// Our own sums rather than gloo::sum: its loop index is an int (wrong past 2^31 elements).
template <class T>
void sum(void* c, const void* a, const void* b, std::size_t n) {
  auto* pc = static_cast<T*>(c);
  const auto* pa = static_cast<const T*>(a);
  const auto* pb = static_cast<const T*>(b);
  for (std::size_t i = 0; i < n; ++i) pc[i] = pa[i] + pb[i];
}

// Wrapping int32 addition: overflow must not be undefined behaviour on a wire value.
void sum_i32(void* c, const void* a, const void* b, std::size_t n) {
  auto* pc = static_cast<std::int32_t*>(c);
  const auto* pa = static_cast<const std::int32_t*>(a);
  const auto* pb = static_cast<const std::int32_t*>(b);
  for (std::size_t i = 0; i < n; ++i) {
    pc[i] = static_cast<std::int32_t>(static_cast<std::uint32_t>(pa[i]) + static_cast<std::uint32_t>(pb[i]));
  }
}

float bf16_to_f32(std::uint16_t v) {
  const std::uint32_t bits = static_cast<std::uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::uint16_t f32_to_bf16(float f) {  // round to nearest even; NaN stays NaN
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

void sum_bf16(void* c, const void* a, const void* b, std::size_t n) {
  auto* pc = static_cast<std::uint16_t*>(c);
  const auto* pa = static_cast<const std::uint16_t*>(a);
  const auto* pb = static_cast<const std::uint16_t*>(b);
  for (std::size_t i = 0; i < n; ++i) pc[i] = f32_to_bf16(bf16_to_f32(pa[i]) + bf16_to_f32(pb[i]));
}

ReduceFn reduce_fn(DType dtype) {
  switch (dtype) {
    case DType::f32: return &sum<float>;
    case DType::i32: return &sum_i32;
    case DType::bf16: return &sum_bf16;
    case DType::f64: return &sum<double>;
  }
  return nullptr;
}

// Concatenation by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string s;
  (s += ... += parts);
  return s;
}

std::string sized(std::int64_t numel, DType dtype) {
  std::string s = std::to_string(numel);
  s += " ";
  s += dtype_name(dtype);
  return s;
}

std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

class GlooWork final : public CommWork {
 public:
  explicit GlooWork(std::shared_ptr<WorkState> state) : state_(std::move(state)) {}
  void wait() override {
    std::unique_lock lock(state_->m);
    state_->cv.wait(lock, [&] { return state_->done; });
    if (state_->error) std::rethrow_exception(state_->error);
  }
  bool ready() override {
    std::lock_guard lock(state_->m);
    return state_->done;
  }
  double busy_seconds() const override {
    std::lock_guard lock(state_->m);
    return state_->busy_seconds;
  }

 private:
  std::shared_ptr<WorkState> state_;
};

}  // namespace

void WorkState::finish(std::exception_ptr e) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(m);
    if (started != std::chrono::steady_clock::time_point{}) {
      busy_seconds = std::chrono::duration<double>(now - started).count();
    }
    error = std::move(e);
    done = true;
  }
  cv.notify_all();
}

GlooCommunicator::GlooCommunicator(std::string name, std::shared_ptr<gloo::Context> context,
                                   std::chrono::milliseconds timeout)
    : name_(std::move(name)),
      context_(std::move(context)),
      rank_(context_->rank),
      size_(context_->size),
      timeout_(timeout),
      sends_to_(static_cast<std::size_t>(size_), 0),
      recvs_from_(static_cast<std::size_t>(size_), 0) {
  worker_ = std::thread([this] { worker_loop(); });
  sender_ = std::thread([this] { sender_loop(); });
}

GlooCommunicator::~GlooCommunicator() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  worker_.join();
  sender_.join();
  context_.reset();  // closes the pairs only once no op can touch them
}

std::string GlooCommunicator::prefix() const {
  std::string s = "group '";
  s += name_;
  s += "' (rank ";
  s += std::to_string(rank_);
  s += " of ";
  s += std::to_string(size_);
  s += "): ";
  return s;
}

void GlooCommunicator::invalid(const std::string& message) const {
  std::string s = prefix();
  s += message;
  throw CommError(s);
}

void GlooCommunicator::check_tensor(const Tensor& t, const char* role) const {
  std::string what = role;
  if (!t && t.numel() != 0) invalid(what + " tensor is empty");
  if (t.device() != Device::cpu) invalid(what + " tensor is not on the CPU (gloo moves host memory only)");
}

std::unique_ptr<CommWork> GlooCommunicator::enqueue(std::string what, Body body) {
  auto state = std::make_shared<WorkState>();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) invalid(what + " issued while the communicator is being destroyed");
    queue_.push_back(Op{std::move(what), std::move(body), state});
  }
  work_cv_.notify_one();
  return std::make_unique<GlooWork>(state);
}

// Collectives are numbered by the count of collectives in the group, the same on every
// member, so "all_reduce #17" names one call across all ranks' logs. The number is also the
// gloo tag, keeping the messages of consecutive collectives apart.
std::string GlooCommunicator::next_collective(const char* op, std::uint32_t* tag) {
  std::lock_guard lock(mutex_);
  const std::uint64_t seq = ++collectives_;
  *tag = static_cast<std::uint32_t>(seq);
  std::string s = op;
  s += " #";
  s += std::to_string(seq);
  return s;
}

void GlooCommunicator::worker_loop() {
  for (;;) {
    Op op;
    std::string poisoned;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and every issued op has run
      op = std::move(queue_.front());
      queue_.pop_front();
      poisoned = poisoned_;
    }
    if (!poisoned.empty()) {
      std::string s = prefix();
      s += op.what;
      s += " not run: the group is unusable since ";
      s += poisoned;
      op.state->finish(std::make_exception_ptr(CommError(s)));
      continue;
    }
    try {
      op.state->start();
      if (op.body(op.state)) op.state->finish(nullptr);
    } catch (const std::exception& e) {
      op.state->finish(failure(op.what, e));
    }
  }
  {
    std::lock_guard lock(mutex_);
    worker_done_ = true;
  }
  send_cv_.notify_all();
}

void GlooCommunicator::sender_loop() {
  for (;;) {
    PendingSend s;
    {
      std::unique_lock lock(mutex_);
      send_cv_.wait(lock, [&] { return worker_done_ || !sends_.empty(); });
      if (sends_.empty()) break;
      s = std::move(sends_.front());
      sends_.pop_front();
    }
    try {
      if (!s.buffer->waitSend(remaining(s.deadline))) throw std::runtime_error("send aborted");
      s.state->finish(nullptr);
    } catch (const std::exception& e) {
      s.state->finish(failure(s.what, e));
    }
  }
}

std::exception_ptr GlooCommunicator::failure(const std::string& what, const std::exception& e) {
  const std::string detail = e.what();
  std::string s = what;
  s += " failed: ";
  if (detail.find("imed out") != std::string::npos) {
    s += "timed out after ";
    s += std::to_string(timeout_.count());
    s += " ms (";
    s += detail;
    s += ")";
  } else {
    s += detail;
  }
  {
    std::lock_guard lock(mutex_);
    if (poisoned_.empty()) poisoned_ = s;  // without the group prefix: later messages add it
  }
  return std::make_exception_ptr(CommError(prefix() + s));
}

// ---- issue: validate on the caller's thread, then queue ----

std::unique_ptr<CommWork> GlooCommunicator::all_reduce(const Tensor& t) {
  check_tensor(t, "all_reduce");
  std::uint32_t tag = 0;
  std::string what = next_collective("all_reduce", &tag);
  what += " of ";
  what += sized(t.numel(), t.dtype());
  return enqueue(std::move(what), [this, t, tag](const std::shared_ptr<WorkState>&) {
    run_all_reduce(t, tag);
    return true;
  });
}

std::unique_ptr<CommWork> GlooCommunicator::reduce_scatter(const Tensor& out, const Tensor& in) {
  check_tensor(out, "reduce_scatter output");
  check_tensor(in, "reduce_scatter input");
  if (in.dtype() != out.dtype()) invalid("reduce_scatter: input and output dtypes differ");
  if (in.numel() != out.numel() * size_) {
    invalid(cat("reduce_scatter: input has ", std::to_string(in.numel()), " elements, expected ",
                std::to_string(size_), " x ", std::to_string(out.numel())));
  }
  std::uint32_t tag = 0;
  std::string what = next_collective("reduce_scatter", &tag);
  what += " of ";
  what += sized(in.numel(), in.dtype());
  return enqueue(std::move(what), [this, out, in, tag](const std::shared_ptr<WorkState>&) {
    run_reduce_scatter(out, in, tag);
    return true;
  });
}

std::unique_ptr<CommWork> GlooCommunicator::all_gather(const Tensor& out, const Tensor& in) {
  check_tensor(out, "all_gather output");
  check_tensor(in, "all_gather input");
  if (in.dtype() != out.dtype()) invalid("all_gather: input and output dtypes differ");
  if (out.numel() != in.numel() * size_) {
    invalid(cat("all_gather: output has ", std::to_string(out.numel()), " elements, expected ",
                std::to_string(size_), " x ", std::to_string(in.numel())));
  }
  std::uint32_t tag = 0;
  std::string what = next_collective("all_gather", &tag);
  what += " of ";
  what += sized(out.numel(), out.dtype());
  return enqueue(std::move(what), [this, out, in, tag](const std::shared_ptr<WorkState>&) {
    run_all_gather(out, in, tag);
    return true;
  });
}

std::unique_ptr<CommWork> GlooCommunicator::broadcast(const Tensor& t, int root) {
  check_tensor(t, "broadcast");
  if (root < 0 || root >= size_) invalid(cat("broadcast: root ", std::to_string(root), " is not a group rank"));
  std::uint32_t tag = 0;
  std::string what = next_collective("broadcast", &tag);
  what += " of ";
  what += sized(t.numel(), t.dtype());
  what += " from rank ";
  what += std::to_string(root);
  return enqueue(std::move(what), [this, t, root, tag](const std::shared_ptr<WorkState>&) {
    run_broadcast(t, root, tag);
    return true;
  });
}

// Point-to-point ops are numbered per peer and direction: the k-th send from A to B pairs
// with the k-th recv at B from A, and k (in the slot) keeps the pairs matched in program
// order whatever the other traffic.
std::unique_ptr<CommWork> GlooCommunicator::send(const Tensor& t, int peer) {
  check_tensor(t, "send");
  if (peer < 0 || peer >= size_ || peer == rank_) invalid(cat("send: peer ", std::to_string(peer), " is not another group rank"));
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mutex_);
    seq = ++sends_to_[static_cast<std::size_t>(peer)];
  }
  std::string what = cat("send #", std::to_string(seq));
  what += " of ";
  what += sized(t.numel(), t.dtype());
  what += " to rank ";
  what += std::to_string(peer);
  const std::uint64_t slot = gloo::Slot::build(kPointToPointSlotPrefix, static_cast<std::uint32_t>(seq));
  return enqueue(what, [this, t, peer, slot, what](const std::shared_ptr<WorkState>& state) {
    if (t.bytes() == 0) return true;
    post_send(t, peer, slot, what, state);
    return false;
  });
}

std::unique_ptr<CommWork> GlooCommunicator::recv(const Tensor& t, int peer) {
  check_tensor(t, "recv");
  if (peer < 0 || peer >= size_ || peer == rank_) invalid(cat("recv: peer ", std::to_string(peer), " is not another group rank"));
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mutex_);
    seq = ++recvs_from_[static_cast<std::size_t>(peer)];
  }
  std::string what = cat("recv #", std::to_string(seq));
  what += " of ";
  what += sized(t.numel(), t.dtype());
  what += " from rank ";
  what += std::to_string(peer);
  const std::uint64_t slot = gloo::Slot::build(kPointToPointSlotPrefix, static_cast<std::uint32_t>(seq));
  return enqueue(std::move(what), [this, t, peer, slot](const std::shared_ptr<WorkState>&) {
    run_recv(t, peer, slot);
    return true;
  });
}

// Synchronous by contract; queued like the rest so it also orders after issued ops.
void GlooCommunicator::barrier() {
  std::uint32_t tag = 0;
  std::string what = next_collective("barrier", &tag);
  enqueue(std::move(what), [this, tag](const std::shared_ptr<WorkState>&) {
    if (size_ == 1) return true;
    gloo::BarrierOptions opts(context_);
    opts.setTag(tag);
    opts.setTimeout(timeout_);
    gloo::barrier(opts);
    return true;
  })->wait();
}

// ---- bodies, on the worker thread ----

// Gloo's ring: each chunk is reduced exactly once, at one rank, then circulated unchanged,
// so every rank ends with bitwise the same bytes (bcube and halving-doubling do not promise it).
void GlooCommunicator::run_all_reduce(const Tensor& t, std::uint32_t tag) {
  if (size_ == 1 || t.numel() == 0) return;
  gloo::AllreduceOptions opts(context_);
  opts.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
  auto buf = context_->createUnboundBuffer(t.data(), t.bytes());
  switch (t.dtype()) {
    case DType::f32: opts.setOutput<float>(std::move(buf)); break;
    case DType::i32: opts.setOutput<std::int32_t>(std::move(buf)); break;
    case DType::bf16: opts.setOutput<std::uint16_t>(std::move(buf)); break;
    case DType::f64: opts.setOutput<double>(std::move(buf)); break;
  }
  opts.setReduceFunction(reduce_fn(t.dtype()));
  opts.setTag(tag);
  opts.setTimeout(timeout_);
  gloo::allreduce(opts);
}

// Ring reduce-scatter over unbound buffers (gloo's new-style API has none, and its
// halving-doubling class needs per-call bound buffers and a handshake). In step s (0..p-2)
// rank r sends its partial sum of chunk (r-s-1) to r+1 and receives the partial of chunk
// (r-s-2) from r-1, adding its own input; after p-1 steps it holds chunk r complete. Each
// rank moves (p-1)/p of the input. `out` may alias chunk r of `in`: that chunk is read only
// by the final addition, which writes element by element.
void GlooCommunicator::run_reduce_scatter(const Tensor& out, const Tensor& in, std::uint32_t tag) {
  const std::size_t bytes = out.bytes();
  if (bytes == 0) return;
  if (size_ == 1) {
    if (out.data() != in.data()) std::memmove(out.data(), in.data(), bytes);
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  const auto n = static_cast<std::size_t>(out.numel());
  const ReduceFn add = reduce_fn(out.dtype());
  const std::uint64_t slot = gloo::Slot::build(kReduceScatterSlotPrefix, tag);
  const int right = (rank_ + 1) % size_;
  const int left = (rank_ + size_ - 1) % size_;
  auto chunk = [&](int i) { return ((i % size_) + size_) % size_; };
  auto* input = static_cast<char*>(in.data());

  std::vector<char> scratch(2 * bytes);  // partial sums: received into one, sent from the other
  auto in_buf = context_->createUnboundBuffer(input, in.bytes());
  std::unique_ptr<gloo::transport::UnboundBuffer> acc[2] = {
      context_->createUnboundBuffer(scratch.data(), bytes),
      context_->createUnboundBuffer(scratch.data() + bytes, bytes)};

  for (int s = 0; s < size_ - 1; ++s) {
    auto& into = acc[s % 2];
    into->recv(left, slot);
    if (s == 0) {
      in_buf->send(right, slot, static_cast<std::size_t>(chunk(rank_ - 1)) * bytes, bytes);
    } else {
      acc[(s - 1) % 2]->send(right, slot);
    }
    if (!into->waitRecv(remaining(deadline))) throw std::runtime_error("recv aborted");
    const char* own = input + static_cast<std::size_t>(chunk(rank_ - s - 2)) * bytes;
    void* dst = (s == size_ - 2) ? out.data() : into->ptr;
    add(dst, into->ptr, own, n);
    auto& sent = s == 0 ? in_buf : acc[(s - 1) % 2];
    if (!sent->waitSend(remaining(deadline))) throw std::runtime_error("send aborted");
  }
}

void GlooCommunicator::run_all_gather(const Tensor& out, const Tensor& in, std::uint32_t tag) {
  if (in.bytes() == 0) return;
  if (size_ == 1) {
    if (out.data() != in.data()) std::memmove(out.data(), in.data(), in.bytes());
    return;
  }
  // Gloo's ring allgather; bytes as elements since it only moves data.
  gloo::AllgatherOptions opts(context_);
  opts.setInput<std::uint8_t>(static_cast<std::uint8_t*>(in.data()), in.bytes());
  opts.setOutput<std::uint8_t>(static_cast<std::uint8_t*>(out.data()), out.bytes());
  opts.setTag(tag);
  opts.setTimeout(timeout_);
  gloo::allgather(opts);
}

void GlooCommunicator::run_broadcast(const Tensor& t, int root, std::uint32_t tag) {
  if (size_ == 1 || t.bytes() == 0) return;
  gloo::BroadcastOptions opts(context_);  // root sends to every rank (one to all)
  opts.setOutput<std::uint8_t>(static_cast<std::uint8_t*>(t.data()), t.bytes());
  opts.setRoot(root);
  opts.setTag(tag);
  opts.setTimeout(timeout_);
  gloo::broadcast(opts);
}

void GlooCommunicator::run_recv(const Tensor& t, int peer, std::uint64_t slot) {
  if (t.bytes() == 0) return;
  auto buf = context_->createUnboundBuffer(t.data(), t.bytes());
  buf->recv(peer, slot);
  if (!buf->waitRecv(timeout_)) throw std::runtime_error("recv aborted");
}

// The bytes are staged so that later ops may overwrite `t` while the peer has not yet posted
// its recv (gloo moves the data only then); the send thread completes the work.
void GlooCommunicator::post_send(const Tensor& t, int peer, std::uint64_t slot, std::string what,
                                 const std::shared_ptr<WorkState>& state) {
  PendingSend p;
  p.what = std::move(what);
  p.staging.resize(t.bytes());
  std::memcpy(p.staging.data(), t.data(), t.bytes());
  p.buffer = context_->createUnboundBuffer(p.staging.data(), p.staging.size());
  p.deadline = std::chrono::steady_clock::now() + timeout_;
  p.state = state;
  p.buffer->send(peer, slot);
  {
    std::lock_guard lock(mutex_);
    sends_.push_back(std::move(p));
  }
  send_cv_.notify_one();
}

}  // namespace trainer::gloo_plugin
