#include "gpt_model.hpp"

#include <cmath>
#include <stdexcept>

namespace gpt {

using trainer::ActivationSpec;
using trainer::BatchShape;
using trainer::DType;
using trainer::ParameterSpec;
using trainer::Shape;
using trainer::Tensor;

GptModel::GptModel(trainer::Backend& backend, GptConfig config)
    : be_(backend), cfg_(config), tp_(std::make_unique<trainer::TensorParallel>(backend, trainer::ModelParallel{})) {}

void GptModel::configure_parallel(const trainer::ModelParallel& parallel) {
  const int tp = parallel.tp_size;
  const auto refuse = [&](const std::string& what) {
    throw std::invalid_argument("gpt: parallel.tp " + std::to_string(tp) + ": " + what);
  };
  if (cfg_.n_head % tp != 0) refuse("model.n_head " + std::to_string(cfg_.n_head) + " is not divisible by tp");
  if (cfg_.vocab % tp != 0) refuse("model.vocab " + std::to_string(cfg_.vocab) + " is not divisible by tp");
  if (parallel.sequence_parallel && tp > 1) {
    if (cfg_.seq_len % tp != 0) refuse("model.seq_len is not divisible by tp (sequence parallel)");
    // A dropout mask is drawn by element index; a shard of rows would draw other masks.
    if (cfg_.dropout > 0) refuse("sequence parallel needs model.dropout 0");
  }
  par_ = parallel;
  tp_ = std::make_unique<trainer::TensorParallel>(be_, parallel);
}

namespace {

// A whole parameter (positional braces would leave its tensor-parallel fields to defaults
// and draw -Wmissing-field-initializers).
ParameterSpec spec(std::string name, Shape shape, int block, bool weight_decay, ParameterSpec::Init init,
                   float init_std) {
  ParameterSpec p;
  p.name = std::move(name);
  p.shape = std::move(shape);
  p.block = block;
  p.weight_decay = weight_decay;
  p.init = init;
  p.init_std = init_std;
  return p;
}

}  // namespace

std::vector<ParameterSpec> GptModel::parameters() const {
  const std::int64_t C = cfg_.d_model, V = cfg_.vocab, L = cfg_.n_layer;
  const float std_base = 0.02f;
  // GPT-2: residual projections scaled by 1/sqrt(2L) so the residual stream's variance
  // does not grow with depth.
  const float std_proj = std_base / std::sqrt(2.0f * static_cast<float>(L));
  using I = ParameterSpec::Init;
  // Tensor parallel: each rank declares its shard of the split weights (the same values as
  // that slice of the tp=1 tensor) and the rest whole.
  const int tp = par_.tp_size, r = par_.tp_rank;
  const std::int64_t Cl = C / tp, Vl = V / tp;
  const auto whole = [&](ParameterSpec ps) { return trainer::replicated_spec(std::move(ps), tp); };
  const auto rows = [&](ParameterSpec ps, Shape global, int dim, Shape local) {  // split output features
    return trainer::shard_spec(std::move(ps), std::move(global), dim, std::move(local), r, tp);
  };
  const auto cols = [&](ParameterSpec ps, Shape local) {  // split input features
    Shape global = ps.shape;
    return trainer::shard_spec(std::move(ps), std::move(global), 1, std::move(local), r, tp);
  };
  std::vector<ParameterSpec> p;
  p.push_back(rows(spec("wte", {V, C}, -1, true, I::normal, std_base), {V, C}, 0, {Vl, C}));
  p.push_back(whole(spec("wpe", {cfg_.seq_len, C}, -1, true, I::normal, std_base)));
  for (int b = 0; b < cfg_.n_layer; ++b) {
    const std::string h = "h." + std::to_string(b) + ".";
    p.push_back(whole(spec(h + "ln1.w", {C}, b, false, I::ones, 0)));
    p.push_back(whole(spec(h + "ln1.b", {C}, b, false, I::zeros, 0)));
    // q, k and v each split by heads: [3C, C] seen as [3, C, C], split on the middle.
    p.push_back(rows(spec(h + "attn.qkv.w", {3 * C, C}, b, true, I::normal, std_base), {3, C, C}, 1, {3 * Cl, C}));
    p.push_back(rows(spec(h + "attn.qkv.b", {3 * C}, b, false, I::zeros, 0), {3, C}, 1, {3 * Cl}));
    p.push_back(cols(spec(h + "attn.proj.w", {C, C}, b, true, I::normal, std_proj), {C, Cl}));
    p.push_back(whole(spec(h + "attn.proj.b", {C}, b, false, I::zeros, 0)));
    p.push_back(whole(spec(h + "ln2.w", {C}, b, false, I::ones, 0)));
    p.push_back(whole(spec(h + "ln2.b", {C}, b, false, I::zeros, 0)));
    p.push_back(rows(spec(h + "mlp.fc.w", {4 * C, C}, b, true, I::normal, std_base), {4 * C, C}, 0, {4 * Cl, C}));
    p.push_back(rows(spec(h + "mlp.fc.b", {4 * C}, b, false, I::zeros, 0), {4 * C}, 0, {4 * Cl}));
    p.push_back(cols(spec(h + "mlp.proj.w", {C, 4 * C}, b, true, I::normal, std_proj), {C, 4 * Cl}));
    p.push_back(whole(spec(h + "mlp.proj.b", {C}, b, false, I::zeros, 0)));
  }
  p.push_back(whole(spec("lnf.w", {C}, -1, false, I::ones, 0)));
  p.push_back(whole(spec("lnf.b", {C}, -1, false, I::zeros, 0)));
  if (!cfg_.tied_embeddings) {
    p.push_back(rows(spec("lm_head.w", {V, C}, -1, true, I::normal, std_base), {V, C}, 0, {Vl, C}));
  }
  return p;
}

void GptModel::bind(const trainer::ParameterStore& params) {
  params_ = &params;
  act_ = params.compute_dtype();
  // Pipeline parallel: a stage's store holds only its own blocks, plus the embedding on the
  // first stage and the final norm and head on the last. The engine never asks this rank
  // for a part it does not hold, so an absent parameter gets an index that fails if used.
  auto idx = [&](const std::string& name) {
    auto i = params.find(name);
    return i ? *i : params.size() + 1;
  };
  wte_ = idx("wte");
  wpe_ = idx("wpe");
  lnf_w_ = idx("lnf.w");
  lnf_b_ = idx("lnf.b");
  head_w_ = cfg_.tied_embeddings ? wte_ : idx("lm_head.w");
  blocks_.clear();
  for (int b = 0; b < cfg_.n_layer; ++b) {
    const std::string h = "h." + std::to_string(b) + ".";
    blocks_.push_back({idx(h + "ln1.w"), idx(h + "ln1.b"), idx(h + "attn.qkv.w"), idx(h + "attn.qkv.b"),
                       idx(h + "attn.proj.w"), idx(h + "attn.proj.b"), idx(h + "ln2.w"), idx(h + "ln2.b"),
                       idx(h + "mlp.fc.w"), idx(h + "mlp.fc.b"), idx(h + "mlp.proj.w"),
                       idx(h + "mlp.proj.b")});
  }
}

Shape GptModel::residual_shape(BatchShape s) const {
  // Sequence parallel: each tp rank holds N/tp of the B*T token rows between the layers.
  if (tp_->sequence_parallel()) return {static_cast<std::int64_t>(s.B) * s.T / par_.tp_size, cfg_.d_model};
  return {s.B, s.T, cfg_.d_model};
}

std::vector<ActivationSpec> GptModel::block_activations(BatchShape s) const {
  // Under tensor parallel a rank keeps its heads' and its MLP columns' activations; the
  // layernorm statistics and res2 are per token row (N/tp rows under sequence parallel),
  // and ln1/ln2 are the whole rows the column-parallel layers read.
  const std::int64_t B = s.B, T = s.T, C = cfg_.d_model, tp = par_.tp_size, Cl = C / tp, NHl = cfg_.n_head / tp;
  const Shape rows = tp_->sequence_parallel() ? Shape{B * T / tp} : Shape{B, T};
  const Shape resid = tp_->sequence_parallel() ? Shape{B * T / tp, C} : Shape{B, T, C};
  return {
      {"ln1", {B, T, C}, act_, true},
      {"ln1_mean", rows, DType::f32, false},
      {"ln1_rstd", rows, DType::f32, false},
      {"qkv", {B, T, 3 * Cl}, act_, false},
      // Per query row log-sum-exp: all the fused attention backward needs besides qkv and
      // att_y. Small (no T x T), but remaking it means rerunning attention: not cheap.
      {"att_lse", {B, NHl, T}, DType::f32, false},
      {"att_y", {B, T, Cl}, act_, false},
      {"res2", resid, act_, false},
      {"ln2", {B, T, C}, act_, true},
      {"ln2_mean", rows, DType::f32, false},
      {"ln2_rstd", rows, DType::f32, false},
      {"fc", {B, T, 4 * Cl}, act_, false},
      {"gelu", {B, T, 4 * Cl}, act_, true},
  };
}

double GptModel::flops_per_token() const {
  double n = 0;
  for (const auto& p : parameters()) n += static_cast<double>(trainer::shape_numel(p.shape));
  return 6.0 * n + 12.0 * cfg_.n_layer * cfg_.d_model * cfg_.seq_len;
}

void GptModel::embed_forward(const trainer::StepContext& ctx, BatchShape s, const Tensor& tokens,
                             const Tensor& x0, trainer::BlockActivations&) {
  tp_->vocab_embedding_forward(x0, tokens, w(wte_), w(wpe_), s.B, s.T, cfg_.d_model, cfg_.vocab);
  if (dropout_p(ctx) > 0) be_.dropout_forward(x0, x0, dropout_p(ctx), ctx.dropout_key(0), x0.numel());
}

void GptModel::embed_backward(const trainer::StepContext& ctx, BatchShape s, const Tensor& tokens,
                              const Tensor& dx, trainer::BlockActivations& acts) {
  Tensor d = dx;  // without dropout the gradient passes through as it is
  if (dropout_p(ctx) > 0) {
    d = acts.scratch(dx.shape(), dx.dtype());
    be_.dropout_backward(d, dx, dropout_p(ctx), ctx.dropout_key(0), dx.numel());
  }
  if (tp_->sequence_parallel()) {
    Tensor whole = acts.scratch({s.B, s.T, cfg_.d_model}, dx.dtype());
    tp_->all_gather_rows(whole, d);
    d = whole;
  }
  tp_->vocab_embedding_backward(g(wte_), g(wpe_), d, tokens, s.B, s.T, cfg_.d_model, cfg_.vocab);
}

// Under sequence parallel a layernorm sees this rank's rows only, so its weight and bias
// gradients are partial sums: they are summed over the tp group before joining the
// gradients (which every tp rank then holds alike).
void GptModel::norm_backward(const Tensor& dinp, std::size_t weight, std::size_t bias, const Tensor& dout,
                             const Tensor& inp, const Tensor& mean, const Tensor& rstd, int rows,
                             trainer::BlockActivations& acts) {
  const int C = cfg_.d_model;
  if (!tp_->sequence_parallel()) {
    be_.layernorm_backward(dinp, g(weight), g(bias), dout, inp, w(weight), mean, rstd, rows, C);
    return;
  }
  Tensor dwb = acts.scratch({2, C});
  be_.fill_zero(dwb);
  const Tensor dw = dwb.view(0, {C}), db = dwb.view(C, {C});
  be_.layernorm_backward(dinp, dw, db, dout, inp, w(weight), mean, rstd, rows, C);
  tp_->all_reduce(dwb);
  be_.axpby(g(weight), 1.0f, dw, 1.0f, C);
  be_.axpby(g(bias), 1.0f, db, 1.0f, C);
}

// A layernorm of this rank's rows into `whole` (all B*T rows): under sequence parallel the
// rows are normalized here and gathered; otherwise `whole` is normalized directly.
void GptModel::norm_forward(const Tensor& whole, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                            std::size_t weight, std::size_t bias, int rows, trainer::BlockActivations& acts) {
  const int C = cfg_.d_model;
  if (!tp_->sequence_parallel()) {
    be_.layernorm_forward(whole, mean, rstd, inp, w(weight), w(bias), rows, C);
    return;
  }
  Tensor mine = acts.scratch({rows, C}, whole.dtype());
  be_.layernorm_forward(mine, mean, rstd, inp, w(weight), w(bias), rows, C);
  tp_->all_gather_rows(whole, mine);
}

void GptModel::block_forward(int block, const trainer::StepContext& ctx, BatchShape s, const Tensor& x,
                             const Tensor& out, trainer::BlockActivations& acts) {
  const auto& p = blocks_.at(static_cast<std::size_t>(block));
  const int B = s.B, T = s.T, C = cfg_.d_model, N = B * T, tp = par_.tp_size, Cl = C / tp;
  const int rows = tp_->sequence_parallel() ? N / tp : N;  // token rows of the residual stream here
  const bool sp = tp_->sequence_parallel();
  const float pdrop = dropout_p(ctx);

  Tensor ln1 = acts.get("ln1"), m1 = acts.get("ln1_mean"), r1 = acts.get("ln1_rstd");
  if (acts.missing({"ln1", "ln1_mean", "ln1_rstd"})) norm_forward(ln1, m1, r1, x, p.ln1_w, p.ln1_b, rows, acts);
  Tensor qkv = acts.get("qkv");
  if (acts.missing({"qkv"})) tp_->column_forward(qkv, ln1, w(p.qkv_w), w(p.qkv_b), N, C, 3 * Cl);
  Tensor att_y = acts.get("att_y"), att_lse = acts.get("att_lse");
  if (acts.missing({"att_y", "att_lse"})) {
    be_.attention_forward(att_y, att_lse, qkv, B, T, Cl, cfg_.n_head / tp);
  }
  // Without dropout or tensor parallel, each projection is added to the residual stream inside
  // its product (one rounding, no separate tensor or add).
  const bool fuse_residual = pdrop == 0 && tp == 1;
  Tensor res2 = acts.get("res2");
  if (acts.missing({"res2"}) && fuse_residual) {
    be_.matmul_residual_forward(res2, att_y, w(p.proj_w), w(p.proj_b), x, N, C, C);
  } else if (acts.missing({"res2"})) {
    Tensor proj = acts.scratch({rows, C}, act_);
    tp_->row_forward(proj, sp ? acts.scratch({N, C}, act_) : Tensor(), att_y, w(p.proj_w), w(p.proj_b), N, Cl, C);
    if (pdrop > 0) be_.dropout_forward(proj, proj, pdrop, ctx.dropout_key(attn_site(block)), proj.numel());
    be_.residual_forward(res2, x, proj, proj.numel());
  }
  Tensor ln2 = acts.get("ln2"), m2 = acts.get("ln2_mean"), r2 = acts.get("ln2_rstd");
  if (acts.missing({"ln2", "ln2_mean", "ln2_rstd"})) norm_forward(ln2, m2, r2, res2, p.ln2_w, p.ln2_b, rows, acts);
  // The up-projection (column-parallel: a local product under any tp) writes its
  // pre-activation "fc" and, fused, its GELU; a recompute pass that holds fc (the selective
  // policy: GELU outputs are cheap) remakes only the GELU.
  Tensor fc = acts.get("fc"), gelu = acts.get("gelu");
  if (acts.missing({"fc"})) {
    be_.matmul_gelu_forward(gelu, fc, ln2, w(p.fc_w), w(p.fc_b), N, C, 4 * Cl);
  } else if (acts.missing({"gelu"})) {
    be_.gelu_forward(gelu, fc, fc.numel());
  }
  if (acts.recomputing()) return;  // the block output is not needed to run backward

  if (fuse_residual) {
    be_.matmul_residual_forward(out, gelu, w(p.fcproj_w), w(p.fcproj_b), res2, N, 4 * C, C);
    return;
  }
  Tensor proj2 = acts.scratch({rows, C}, act_);
  tp_->row_forward(proj2, sp ? acts.scratch({N, C}, act_) : Tensor(), gelu, w(p.fcproj_w), w(p.fcproj_b), N, 4 * Cl,
                   C);
  if (pdrop > 0) be_.dropout_forward(proj2, proj2, pdrop, ctx.dropout_key(mlp_site(block)), proj2.numel());
  be_.residual_forward(out, res2, proj2, proj2.numel());
}

void GptModel::block_backward(int block, const trainer::StepContext& ctx, BatchShape s, const Tensor& x,
                              const Tensor& dresid, trainer::BlockActivations& acts) {
  const auto& p = blocks_.at(static_cast<std::size_t>(block));
  const int B = s.B, T = s.T, C = cfg_.d_model, N = B * T, tp = par_.tp_size, Cl = C / tp;
  const bool sp = tp_->sequence_parallel();
  const int rows = sp ? N / tp : N;
  const float pdrop = dropout_p(ctx);
  const Tensor ln1 = acts.get("ln1"), m1 = acts.get("ln1_mean"), r1 = acts.get("ln1_rstd");
  const Tensor qkv = acts.get("qkv"), att_lse = acts.get("att_lse"), att_y = acts.get("att_y");
  const Tensor res2 = acts.get("res2"), ln2 = acts.get("ln2"), m2 = acts.get("ln2_mean"),
               r2 = acts.get("ln2_rstd"), fc = acts.get("fc"), gelu = acts.get("gelu");
  // The gradient of a row-parallel output, whole on every rank (gathered under sequence
  // parallel), as the row-parallel backward reads it.
  const auto whole_rows = [&](const Tensor& mine) {
    if (!sp) return mine;
    Tensor whole = acts.scratch({N, C}, act_);
    tp_->all_gather_rows(whole, mine);
    return whole;
  };

  // The gradient through a dropout: without dropout, dresid itself (read by the products below
  // before the layernorm backward adds into it, in stream order).
  const auto through_dropout = [&](int site) {
    if (pdrop == 0) return dresid;
    Tensor d = acts.scratch({rows, C}, act_);
    be_.dropout_backward(d, dresid, pdrop, ctx.dropout_key(site), d.numel());
    return d;
  };

  // MLP branch: out = res2 + dropout(gelu(ln2 @ fc) @ proj)
  const Tensor dproj2 = through_dropout(mlp_site(block));
  // The down-projection's backward (row-parallel: a local product) through the GELU, fused.
  Tensor dfc = acts.scratch({B, T, 4 * Cl}, act_);
  be_.matmul_gelu_backward(dfc, g(p.fcproj_w), g(p.fcproj_b), whole_rows(dproj2), gelu, fc, w(p.fcproj_w), N,
                           4 * Cl, C);
  Tensor dln2 = acts.scratch({rows, C}, act_);
  tp_->column_backward(dln2, sp ? acts.scratch({N, C}, act_) : Tensor(), g(p.fc_w), g(p.fc_b), dfc, ln2, w(p.fc_w), N,
                       C, 4 * Cl);
  norm_backward(dresid, p.ln2_w, p.ln2_b, dln2, res2, m2, r2, rows, acts);

  // Attention branch: res2 = x + dropout(attention(ln1 @ qkv) @ proj)
  const Tensor dproj = through_dropout(attn_site(block));
  Tensor datt_y = acts.scratch({B, T, Cl}, act_);
  tp_->row_backward(datt_y, g(p.proj_w), g(p.proj_b), whole_rows(dproj), att_y, w(p.proj_w), N, Cl, C);
  Tensor dqkv = acts.scratch({B, T, 3 * Cl}, act_);
  be_.attention_backward(dqkv, datt_y, qkv, att_y, att_lse, B, T, Cl, cfg_.n_head / tp);
  Tensor dln1 = acts.scratch({rows, C}, act_);
  tp_->column_backward(dln1, sp ? acts.scratch({N, C}, act_) : Tensor(), g(p.qkv_w), g(p.qkv_b), dqkv, ln1,
                       w(p.qkv_w), N, C, 3 * Cl);
  norm_backward(dresid, p.ln1_w, p.ln1_b, dln1, x, m1, r1, rows, acts);
}

double GptModel::head_forward_backward(const trainer::StepContext&, BatchShape s, const Tensor& x,
                                       const Tensor& targets, float dloss, const Tensor& dx,
                                       trainer::BlockActivations& acts) {
  return head(s, x, targets, dloss, dx, acts, Tensor(), 1.0);
}

bool GptModel::head_forward_backward_on_device(const trainer::StepContext&, BatchShape s, const Tensor& x,
                                               const Tensor& targets, float dloss, const Tensor& dx,
                                               trainer::BlockActivations& acts, const Tensor& loss_sum,
                                               double loss_scale) {
  head(s, x, targets, dloss, dx, acts, loss_sum, loss_scale);
  return true;
}

double GptModel::head(BatchShape s, const Tensor& x, const Tensor& targets, float dloss, const Tensor& dx,
                      trainer::BlockActivations& acts, const Tensor& loss_sum, double loss_scale) {
  const int B = s.B, T = s.T, C = cfg_.d_model, V = cfg_.vocab, N = B * T, tp = par_.tp_size, Vl = V / tp;
  const bool sp = tp_->sequence_parallel();
  const int rows = sp ? N / tp : N;
  Tensor lnf = acts.scratch({B, T, C}, act_), mf = acts.scratch({rows}), rf = acts.scratch({rows});
  norm_forward(lnf, mf, rf, x, lnf_w_, lnf_b_, rows, acts);
  // Tensor parallel: this rank's V/tp columns of the logits (the head is column-parallel).
  Tensor logits = acts.scratch({B, T, Vl}, act_);
  tp_->column_forward(logits, lnf, w(head_w_), Tensor(), N, C, Vl);
  double sum = 0;
  if (tp == 1) {
    Tensor losses = acts.scratch({B, T});
    // The gradient overwrites the logits in place: one [N,V] buffer, never two.
    be_.crossentropy_forward_backward(losses, dx ? logits : Tensor(), logits, targets, dloss, N, V);
    if (loss_sum) {
      be_.accumulate_sum(loss_sum, losses, N, loss_scale);  // no host read: the engine reads the step's total
    } else {
      std::vector<float> host(static_cast<std::size_t>(N));
      be_.copy_to_host(host.data(), losses);
      for (float l : host) sum += l;
    }
  } else {
    sum = tp_->vocab_cross_entropy(dx ? logits : Tensor(), logits, targets, dloss, N, V, loss_sum, loss_scale);
  }
  if (dx) {
    Tensor dlnf = acts.scratch({rows, C}, act_);
    tp_->column_backward(dlnf, sp ? acts.scratch({N, C}, act_) : Tensor(), g(head_w_), Tensor(), logits, lnf,
                         w(head_w_), N, C, Vl);
    be_.fill_zero(dx);
    norm_backward(dx, lnf_w_, lnf_b_, dlnf, x, mf, rf, rows, acts);
  }
  return sum;
}

// The forward half of head_forward_backward, stopping at the logits.
void GptModel::head_logits(const trainer::StepContext&, BatchShape s, const Tensor& x, const Tensor& logits,
                           trainer::BlockActivations& acts) {
  if (par_.tp_size > 1) throw std::logic_error("gpt: sampling under tensor parallel (tp > 1) is not supported");
  const int B = s.B, T = s.T, C = cfg_.d_model, V = cfg_.vocab, N = B * T;
  Tensor lnf = acts.scratch({B, T, C}, act_), mf = acts.scratch({B, T}), rf = acts.scratch({B, T});
  be_.layernorm_forward(lnf, mf, rf, x, w(lnf_w_), w(lnf_b_), N, C);
  be_.matmul_forward(logits, lnf, w(head_w_), Tensor(), N, C, V);
}

}  // namespace gpt
