// Tensor parallel (Megatron-style) building blocks for models: a layer's weight split over
// the ranks of the tp group, with the collectives that make each rank's result equal to the
// unsplit layer's.
//   column-parallel linear  weight split on output features: forward needs no collective,
//                           backward all-reduces d(input)
//   row-parallel linear     weight split on input features: forward all-reduces the output
//                           (the bias is counted once), backward needs no collective
//   vocabulary-parallel embedding and cross-entropy: each rank holds V/tp rows of the token
//                           embedding (and of a tied head); the loss never gathers the logits
// Sequence parallel: the activations between a row-parallel and the next column-parallel
// layer (layernorm, dropout, residual) are split by token rows, N/tp per rank; the
// all-reduces become a reduce-scatter (after row-parallel) and an all-gather (before
// column-parallel).
#pragma once
#include <cstdint>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/comm.hpp"
#include "trainer/parameters.hpp"
#include "trainer/tensor.hpp"

namespace trainer {

// What a model learns of the tensor-parallel group before it declares its parameters.
struct ModelParallel {
  Communicator* tp = nullptr;  // null when tp_size == 1
  int tp_rank = 0;
  int tp_size = 1;
  bool sequence_parallel = false;
};

// A ParameterSpec for this rank's shard of a tensor of shape `global`, split into `count`
// equal parts along `split_dim`; part `index` is held. The global shape may be the tp=1
// shape seen with an extra leading dimension (qkv's [3C, C] as [3, C, C], so that each rank
// holds its heads' rows of q, k and v). `local_shape` is the shape the model uses.
ParameterSpec shard_spec(ParameterSpec global_spec, Shape global, int split_dim, Shape local_shape, int index,
                         int count);
// A parameter every tp rank holds whole: the gradient norm counts 1/count of it per rank.
ParameterSpec replicated_spec(ParameterSpec spec, int count);

class TensorParallel {
 public:
  TensorParallel(Backend& backend, ModelParallel parallel);

  int rank() const { return p_.tp_rank; }
  int size() const { return p_.tp_size; }
  bool sequence_parallel() const { return p_.sequence_parallel && p_.tp_size > 1; }
  Communicator* comm() const { return p_.tp; }

  // --- collectives over the tp group (no-ops at tp 1) ---
  void all_reduce(const Tensor& t) const;
  // Rows split evenly: `full` [rows, ...] holds rank r's `shard` at rows [r*rows/tp, ...).
  void all_gather_rows(const Tensor& full, const Tensor& shard) const;
  void reduce_scatter_rows(const Tensor& shard, const Tensor& full) const;
  // Sums `partial` (a gradient contribution of this rank's token rows) over the group and
  // accumulates it into `grad`: replicated parameters under sequence parallel.
  void accumulate_reduced(const Tensor& grad, const Tensor& partial) const;

  // --- linear layers; shapes as Backend::matmul_*, OC/C the local (sharded) widths ---
  // out[N, OC_local] = inp[N, C] @ w_local^T + b_local
  void column_forward(const Tensor& out, const Tensor& inp, const Tensor& w, const Tensor& b, int N, int C,
                      int OC) const;
  // dinp[N, C] = sum over the group of each rank's d(inp); accumulates dw, db (local).
  // Under sequence parallel dinp is this rank's N/tp rows and `partial` the full [N, C]
  // before the reduce-scatter; otherwise `partial` may be empty.
  void column_backward(const Tensor& dinp, const Tensor& partial, const Tensor& dw, const Tensor& db,
                       const Tensor& dout, const Tensor& inp, const Tensor& w, int N, int C, int OC) const;
  // out[N, OC] = sum over the group of inp_local @ w_local^T, plus b (whole, on every rank)
  // once. Under sequence parallel `out` is this rank's N/tp rows and `partial` holds the
  // full [N, OC] before the reduce-scatter; otherwise `partial` may be empty.
  void row_forward(const Tensor& out, const Tensor& partial, const Tensor& inp, const Tensor& w, const Tensor& b,
                   int N, int C, int OC) const;
  // dout: [N, OC], the same on every rank (gathered first under sequence parallel).
  void row_backward(const Tensor& dinp, const Tensor& dw, const Tensor& db, const Tensor& dout, const Tensor& inp,
                    const Tensor& w, int N, int C, int OC) const;

  // --- vocabulary-parallel embedding: this rank holds rows [rank*V/tp, (rank+1)*V/tp) ---
  // out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:], whole on every rank (all-reduced); tokens
  // outside the shard contribute zeros. Under sequence parallel out holds N/tp rows.
  void vocab_embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte_shard,
                               const Tensor& wpe, int B, int T, int C, int V) const;
  // dout: [B*T, C], the same on every rank (whole). Accumulates the shard's rows of dwte and,
  // on every rank alike, dwpe.
  void vocab_embedding_backward(const Tensor& dwte_shard, const Tensor& dwpe, const Tensor& dout,
                                const Tensor& tokens, int B, int T, int C, int V) const;
  // Softmax cross-entropy of logits split by vocabulary (logits [N, V/tp], this rank's
  // columns) without gathering them: the row maxima, sums of exponentials and target logits
  // are combined over the group. Returns the summed loss over the N rows (targets < 0 are
  // ignored), the same on every rank. If dlogits is not empty it receives
  // (softmax - onehot) * dloss for this rank's columns (it may alias logits).
  // With loss_sum (f64 [1] on the device) the loss is added to it, times loss_scale, without a
  // host read (Backend::accumulate_sum), and 0 is returned.
  double vocab_cross_entropy(const Tensor& dlogits, const Tensor& logits, const Tensor& targets, float dloss,
                             int N, int V, const Tensor& loss_sum = Tensor(), double loss_scale = 1.0) const;

 private:
  Tensor shard_tokens(const Tensor& tokens, int n, int V) const;  // local ids; out-of-shard -> V/tp
  Backend& be_;
  ModelParallel p_;
};

}  // namespace trainer
