// Backend: where tensors live and how the ops of a decoder run (forward and backward).
// Ops take explicit shapes. Unless a comment says "accumulates", outputs are overwritten.
// Parameter gradients (dweight, dbias, dwte, dwpe) always accumulate, so gradient
// accumulation over micro-batches is free. All f32 unless the tensor says otherwise.
// Mixed precision (a backend that accepts bf16, see docs/gpu.md): activations and the
// parameters an op reads may be bf16, computed in f32; parameter gradients, optimizer
// tensors, losses, layernorm mean/rstd stay f32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "trainer/plugin.hpp"
#include "trainer/rng.hpp"
#include "trainer/tensor.hpp"

namespace trainer {

// One tensor of a multi-tensor AdamW update (Backend::adamw_update_many).
struct AdamWTensors {
  Tensor param, grad, m, v;
  float weight_decay = 0.0f;
  // Empty, or a bf16 tensor of param's element count that receives the updated param,
  // rounded to nearest even (the mixed-precision compute copy, refreshed in the same pass).
  Tensor compute;
};

// One tensor of a multi-tensor sum of squares (Backend::sum_squares_many): f32 elements,
// their squares weighted by `scale`.
struct SquaresTerm {
  Tensor x;
  double scale = 1.0;
};

class Backend : public Plugin {
 public:
  virtual Device device() const = 0;
  virtual const char* name() const = 0;

  // --- memory ---
  virtual Tensor allocate(const Shape& shape, DType dtype) = 0;  // contents undefined
  virtual void fill_zero(const Tensor& t) = 0;
  virtual void copy_from_host(const Tensor& dst, const void* src) = 0;  // dst.bytes() bytes
  virtual void copy_to_host(void* dst, const Tensor& src) = 0;          // src.bytes() bytes
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;          // same byte size
  // dst = src converted between f32 and bf16 (round to nearest even), same element count;
  // equal dtypes copy. Mixed precision makes the bf16 compute copies of parameters with it.
  // f64 <-> f32 too (round to nearest even), for the device scalars of accumulate_sum.
  virtual void convert(const Tensor& dst, const Tensor& src) = 0;
  virtual void synchronize() = 0;
  // Host memory for large device<->host copies (checkpoint snapshots): page-locked where the
  // device has it, so copy_to_host runs at full bandwidth. The defaults are malloc and free.
  virtual void* allocate_host(std::size_t bytes);
  virtual void free_host(void* p) noexcept;

  // --- embedding: out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:] ---
  virtual void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte,
                                 const Tensor& wpe, int B, int T, int C) = 0;
  // accumulates into dwte and dwpe
  virtual void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout,
                                  const Tensor& tokens, int B, int T, int C) = 0;

  // --- layernorm over the last dim of N rows of C; mean/rstd are [N] ---
  virtual void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                                 const Tensor& inp, const Tensor& weight, const Tensor& bias,
                                 int N, int C) = 0;
  // accumulates into dinp, dweight, dbias
  virtual void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                                  const Tensor& dout, const Tensor& inp, const Tensor& weight,
                                  const Tensor& mean, const Tensor& rstd, int N, int C) = 0;

  // --- linear: out[N,OC] = inp[N,C] @ weight[OC,C]^T (+ bias[OC]); bias may be empty ---
  virtual void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                              const Tensor& bias, int N, int C, int OC) = 0;
  // dinp overwritten (skipped when empty); accumulates into dweight and dbias (if not empty)
  virtual void matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                               const Tensor& dout, const Tensor& inp, const Tensor& weight,
                               int N, int C, int OC) = 0;
  // out[N,OC] = residual[N,OC] + inp[N,C] @ weight[OC,C]^T (+ bias[OC]): a projection added
  // to the residual stream, fused where a backend can (cuBLASLt reads the residual as its C
  // matrix, and the sum is rounded once). out must not alias inp; it may alias residual.
  // The default runs matmul_forward into out, then residual_forward.
  virtual void matmul_residual_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                                       const Tensor& bias, const Tensor& residual, int N, int C, int OC);

  // --- the MLP up-projection and its GELU, fused where a backend can (cuBLASLt epilogues) ---
  // pre[N,OC] = inp[N,C] @ weight[OC,C]^T (+ bias[OC]); out[N,OC] = gelu(pre). Both
  // overwritten. The default runs matmul_forward then gelu_forward.
  virtual void matmul_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& inp, const Tensor& weight,
                                   const Tensor& bias, int N, int C, int OC);
  // The backward of a linear layer whose input was inp = gelu(pre) (the MLP down-projection):
  // dpre[N,C] = gelu'(pre) * (dout[N,OC] @ weight[OC,C]) overwritten; accumulates into dweight
  // and dbias (if not empty) as matmul_backward. The default runs matmul_backward into a
  // scratch tensor of pre's dtype, then gelu_backward.
  virtual void matmul_gelu_backward(const Tensor& dpre, const Tensor& dweight, const Tensor& dbias,
                                    const Tensor& dout, const Tensor& inp, const Tensor& pre, const Tensor& weight,
                                    int N, int C, int OC);

  // --- causal self-attention from packed qkv [B,T,3C] (q|k|v, heads of C/NH) ---
  // Fused ("flash"): the T x T probabilities are never kept. out [B,T,C] has qkv's dtype (f32
  // or bf16, as a backend supports); stats [B,NH,T] f32 receives each query row's
  // log-sum-exp of its scaled, causally masked scores (natural log), all backward needs to
  // recompute the probabilities blockwise.
  virtual void attention_forward(const Tensor& out, const Tensor& stats, const Tensor& qkv,
                                 int B, int T, int C, int NH) = 0;
  // dqkv overwritten (qkv's dtype); out and stats are what attention_forward produced for qkv.
  virtual void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                  const Tensor& out, const Tensor& stats,
                                  int B, int T, int C, int NH) = 0;

  // --- GELU (tanh approximation, as GPT-2) ---
  virtual void gelu_forward(const Tensor& out, const Tensor& inp, std::int64_t N) = 0;
  virtual void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout,
                             std::int64_t N) = 0;

  // --- elementwise ---
  virtual void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b,
                                std::int64_t N) = 0;
  // out = inp * keep / (1 - p), keep drawn from key; out may alias inp; p == 0 copies
  virtual void dropout_forward(const Tensor& out, const Tensor& inp, float p, RngKey key,
                               std::int64_t N) = 0;
  // dinp = dout * keep / (1 - p) with the same mask; dinp may alias dout
  virtual void dropout_backward(const Tensor& dinp, const Tensor& dout, float p, RngKey key,
                                std::int64_t N) = 0;
  // y = a * x + b * y
  virtual void axpby(const Tensor& y, float a, const Tensor& x, float b, std::int64_t N) = 0;
  // sum of squares, reduced in a fixed order (deterministic), returned to the host
  virtual double sum_squares(const Tensor& x, std::int64_t N) = 0;

  // --- sums left on the device: a step's loss and gradient norm with one host read ---
  // Each host read waits for everything queued before it, so the engine keeps these sums in
  // f64 device scalars and reads them back once per step.
  // acc[0] += scale * (x[0] + ... + x[N-1]), the sum taken in double; x f32 or f64 [N], acc
  // f64 [1]. The default reads x and acc to the host and sums in index order; a backend's own
  // kernel may sum in another fixed order (deterministic, within double rounding of it).
  virtual void accumulate_sum(const Tensor& acc, const Tensor& x, std::int64_t N, double scale);
  // out[0] = terms[0].scale * sum_squares(terms[0].x) + terms[1].scale * ..., each term's sum
  // of squares as sum_squares takes it, the scaled terms added in the order given, in double;
  // stored in out's dtype (f64, or f32 rounded to nearest), out [1]. The default calls
  // sum_squares per term (a host read each) and copies the total in.
  virtual void sum_squares_many(const Tensor& out, const std::vector<SquaresTerm>& terms);

  // --- loss: softmax cross-entropy over V classes for N rows ---
  // losses [N] per row; if dlogits is not empty, dlogits = (softmax - onehot) * dloss
  // (dlogits may alias logits). Targets < 0 are ignored (loss 0, gradient 0).
  virtual void crossentropy_forward_backward(const Tensor& losses, const Tensor& dlogits,
                                             const Tensor& logits, const Tensor& targets,
                                             float dloss, int N, int V) = 0;

  // The same loss over a vocabulary split across ranks (tensor parallel), in two halves around
  // an all_gather of the statistics, so that no rank ever holds the whole [N, vocabulary].
  // logits [N, V] hold global class ids [first, first + V) (f32, or bf16 where supported).
  // Stats: stats [N, 3] f32 per row = {max z, sum of exp(z - max), z of the target if this
  // shard holds it, else 0}.
  virtual void crossentropy_shard_stats(const Tensor& stats, const Tensor& logits, const Tensor& targets,
                                        int first, int N, int V);
  // Finish: all_stats [shards, N, 3] is every shard's stats in group-rank order. losses [N]
  // = log S + M - z_target with M, S the row's maximum and sum over all shards (0 where the
  // target is negative); if dlogits is not empty it gets this shard's (softmax - onehot) *
  // dloss (may alias logits). The defaults compute on the host (f32 only).
  virtual void crossentropy_shard_finish(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                                         const Tensor& targets, const Tensor& all_stats, int shards, int first,
                                         float dloss, int N, int V);

  // --- optimizer: AdamW with bias correction, decoupled weight decay; t is 1-based ---
  virtual void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m,
                            const Tensor& v, std::int64_t N, float lr, float beta1, float beta2,
                            float eps, float weight_decay, std::int64_t t) = 0;

  // The same update over many tensors at once (one launch where a backend can): each entry's
  // param, grad, m and v are f32 of one element count, with its own weight decay, and an
  // optional bf16 `compute` copy to write. The default calls adamw_update for each entry in
  // order, then converts param into compute.
  virtual void adamw_update_many(const std::vector<AdamWTensors>& tensors, float lr, float beta1, float beta2,
                                 float eps, std::int64_t t);

  // --- for plugins that share the device with the backend (the nccl comm plugin) ---
  // The queue every op above is issued to, as the native handle (cudaStream_t for cuda),
  // and the device it belongs to; null and -1 for a backend without one (cpu). Work ordered
  // after this stream sees the results of every op issued so far.
  virtual void* native_stream() { return nullptr; }
  virtual int native_device() const { return -1; }
};

}  // namespace trainer
