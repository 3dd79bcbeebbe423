// The tensor-parallel building blocks of tensor_parallel.hpp, over Backend ops and the tp
// Communicator. The vocabulary-parallel loss gathers three statistics per row over the group
// (Backend::crossentropy_shard_stats / _finish), so the logits never leave their rank.
#include "trainer/tensor_parallel.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/model.hpp"

namespace trainer {

void Model::configure_parallel(const ModelParallel& parallel) {
  if (parallel.tp_size > 1) {
    throw std::invalid_argument("this model does not support tensor parallel; set parallel.tp to 1");
  }
}

ParameterSpec shard_spec(ParameterSpec spec, Shape global, int split_dim, Shape local_shape, int index, int count) {
  if (count <= 1) return spec;
  const auto d = static_cast<std::size_t>(split_dim);
  if (d >= global.size() || global[d] % count != 0 || shape_numel(global) != shape_numel(spec.shape) ||
      shape_numel(local_shape) * count != shape_numel(global)) {
    throw std::invalid_argument("parameter '" + spec.name + "' of shape " + shape_string(spec.shape) +
                                " cannot be split in " + std::to_string(count) + " along dimension " +
                                std::to_string(split_dim) + " of " + shape_string(global));
  }
  spec.global = std::move(global);
  spec.split_dim = split_dim;
  spec.shard_index = index;
  spec.shard_count = count;
  spec.shape = std::move(local_shape);
  return spec;
}

ParameterSpec replicated_spec(ParameterSpec spec, int count) {
  spec.grad_norm_share = 1.0f / static_cast<float>(count);
  return spec;
}

TensorParallel::TensorParallel(Backend& backend, ModelParallel parallel) : be_(backend), p_(parallel) {
  if (p_.tp_size > 1 && !p_.tp) throw std::invalid_argument("tensor parallel of size > 1 needs a tp communicator");
}

void TensorParallel::all_reduce(const Tensor& t) const {
  if (p_.tp_size > 1) p_.tp->all_reduce(t)->wait_on_device();
}

void TensorParallel::all_gather_rows(const Tensor& full, const Tensor& shard) const {
  if (p_.tp_size > 1) {
    p_.tp->all_gather(full, shard)->wait_on_device();
  } else {
    be_.copy(full, shard);
  }
}

void TensorParallel::reduce_scatter_rows(const Tensor& shard, const Tensor& full) const {
  if (p_.tp_size > 1) {
    p_.tp->reduce_scatter(shard, full)->wait_on_device();
  } else {
    be_.copy(shard, full);
  }
}

void TensorParallel::accumulate_reduced(const Tensor& grad, const Tensor& partial) const {
  all_reduce(partial);
  be_.axpby(grad, 1.0f, partial, 1.0f, grad.numel());
}

void TensorParallel::column_forward(const Tensor& out, const Tensor& inp, const Tensor& w, const Tensor& b, int N,
                                    int C, int OC) const {
  be_.matmul_forward(out, inp, w, b, N, C, OC);
}

void TensorParallel::column_backward(const Tensor& dinp, const Tensor& partial, const Tensor& dw, const Tensor& db,
                                     const Tensor& dout, const Tensor& inp, const Tensor& w, int N, int C,
                                     int OC) const {
  if (sequence_parallel()) {
    be_.matmul_backward(partial, dw, db, dout, inp, w, N, C, OC);
    reduce_scatter_rows(dinp, partial);
    return;
  }
  be_.matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
  all_reduce(dinp);
}

void TensorParallel::row_forward(const Tensor& out, const Tensor& partial, const Tensor& inp, const Tensor& w,
                                 const Tensor& b, int N, int C, int OC) const {
  // The bias joins one rank's partial sum, so the reduce adds it exactly once.
  const Tensor bias = p_.tp_rank == 0 ? b : Tensor();
  if (sequence_parallel()) {
    be_.matmul_forward(partial, inp, w, bias, N, C, OC);
    reduce_scatter_rows(out, partial);
    return;
  }
  be_.matmul_forward(out, inp, w, bias, N, C, OC);
  all_reduce(out);
}

void TensorParallel::row_backward(const Tensor& dinp, const Tensor& dw, const Tensor& db, const Tensor& dout,
                                  const Tensor& inp, const Tensor& w, int N, int C, int OC) const {
  be_.matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
}

Tensor TensorParallel::shard_tokens(const Tensor& tokens, int n, int V) const {
  const int local_v = V / p_.tp_size, first = p_.tp_rank * local_v;
  std::vector<std::int32_t> host(static_cast<std::size_t>(n));
  be_.copy_to_host(host.data(), tokens);
  for (auto& t : host) t = (t >= first && t < first + local_v) ? t - first : local_v;
  Tensor local = be_.allocate(tokens.shape(), DType::i32);
  be_.copy_from_host(local, host.data());
  return local;
}

void TensorParallel::vocab_embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte_shard,
                                             const Tensor& wpe, int B, int T, int C, int V) const {
  if (p_.tp_size == 1) {
    be_.embedding_forward(out, tokens, wte_shard, wpe, B, T, C);
    return;
  }
  const int local_v = V / p_.tp_size;
  // The shard plus one zero row, which every token outside the shard looks up.
  Tensor table = be_.allocate({local_v + 1, C}, wte_shard.dtype());
  be_.copy(table.view(0, {local_v, C}), wte_shard);
  be_.fill_zero(table.view(static_cast<std::int64_t>(local_v) * C, {1, C}));
  // Positions are added on rank 0 only, so the sum over the group holds them once.
  Tensor positions = wpe;
  if (p_.tp_rank != 0) {
    positions = be_.allocate(wpe.shape(), wpe.dtype());
    be_.fill_zero(positions);
  }
  const Tensor local_tokens = shard_tokens(tokens, B * T, V);
  if (sequence_parallel()) {
    Tensor full = be_.allocate({B, T, C}, out.dtype());
    be_.embedding_forward(full, local_tokens, table, positions, B, T, C);
    reduce_scatter_rows(out, full);
    return;
  }
  be_.embedding_forward(out, local_tokens, table, positions, B, T, C);
  all_reduce(out);
}

void TensorParallel::vocab_embedding_backward(const Tensor& dwte_shard, const Tensor& dwpe, const Tensor& dout,
                                              const Tensor& tokens, int B, int T, int C, int V) const {
  if (p_.tp_size == 1) {
    be_.embedding_backward(dwte_shard, dwpe, dout, tokens, B, T, C);
    return;
  }
  const int local_v = V / p_.tp_size;
  Tensor dtable = be_.allocate({local_v + 1, C}, DType::f32);
  be_.fill_zero(dtable);
  // dout is whole and the same on every rank, so dwpe accumulates the same on all of them.
  be_.embedding_backward(dtable, dwpe, dout, shard_tokens(tokens, B * T, V), B, T, C);
  be_.axpby(dwte_shard, 1.0f, dtable.view(0, {local_v, C}), 1.0f, static_cast<std::int64_t>(local_v) * C);
}

double TensorParallel::vocab_cross_entropy(const Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                                           float dloss, int N, int V, const Tensor& loss_sum,
                                           double loss_scale) const {
  const int local_v = V / p_.tp_size, first = p_.tp_rank * local_v;
  // Three numbers per row leave the rank (its shard's max, sum of exponentials and target
  // logit), never the [N, V/tp] logits; every rank combines them in the same order.
  Tensor stats = be_.allocate({N, 3}, DType::f32);
  be_.crossentropy_shard_stats(stats, logits, targets, first, N, local_v);
  Tensor all = stats;
  if (p_.tp_size > 1) {
    all = be_.allocate({p_.tp_size, N, 3}, DType::f32);
    p_.tp->all_gather(all, stats)->wait_on_device();
  }
  Tensor losses = be_.allocate({N}, DType::f32);
  be_.crossentropy_shard_finish(losses, dlogits, logits, targets, all, p_.tp_size, first, dloss, N, local_v);
  if (loss_sum) {
    be_.accumulate_sum(loss_sum, losses, N, loss_scale);
    return 0.0;
  }
  std::vector<float> host(static_cast<std::size_t>(N));
  be_.copy_to_host(host.data(), losses);
  double loss = 0;
  for (const float l : host) loss += l;
  return loss;
}

}  // namespace trainer
