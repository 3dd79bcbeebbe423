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

GptModel::GptModel(trainer::Backend& backend, GptConfig config) : be_(backend), cfg_(config) {}

std::vector<ParameterSpec> GptModel::parameters() const {
  const std::int64_t C = cfg_.d_model, V = cfg_.vocab, L = cfg_.n_layer;
  const float std_base = 0.02f;
  // GPT-2: residual projections scaled by 1/sqrt(2L) so the residual stream's variance
  // does not grow with depth.
  const float std_proj = std_base / std::sqrt(2.0f * static_cast<float>(L));
  using I = ParameterSpec::Init;
  std::vector<ParameterSpec> p;
  p.push_back({"wte", {V, C}, -1, true, I::normal, std_base});
  p.push_back({"wpe", {cfg_.seq_len, C}, -1, true, I::normal, std_base});
  for (int b = 0; b < cfg_.n_layer; ++b) {
    const std::string h = "h." + std::to_string(b) + ".";
    p.push_back({h + "ln1.w", {C}, b, false, I::ones, 0});
    p.push_back({h + "ln1.b", {C}, b, false, I::zeros, 0});
    p.push_back({h + "attn.qkv.w", {3 * C, C}, b, true, I::normal, std_base});
    p.push_back({h + "attn.qkv.b", {3 * C}, b, false, I::zeros, 0});
    p.push_back({h + "attn.proj.w", {C, C}, b, true, I::normal, std_proj});
    p.push_back({h + "attn.proj.b", {C}, b, false, I::zeros, 0});
    p.push_back({h + "ln2.w", {C}, b, false, I::ones, 0});
    p.push_back({h + "ln2.b", {C}, b, false, I::zeros, 0});
    p.push_back({h + "mlp.fc.w", {4 * C, C}, b, true, I::normal, std_base});
    p.push_back({h + "mlp.fc.b", {4 * C}, b, false, I::zeros, 0});
    p.push_back({h + "mlp.proj.w", {C, 4 * C}, b, true, I::normal, std_proj});
    p.push_back({h + "mlp.proj.b", {C}, b, false, I::zeros, 0});
  }
  p.push_back({"lnf.w", {C}, -1, false, I::ones, 0});
  p.push_back({"lnf.b", {C}, -1, false, I::zeros, 0});
  if (!cfg_.tied_embeddings) p.push_back({"lm_head.w", {V, C}, -1, true, I::normal, std_base});
  return p;
}

void GptModel::bind(const trainer::ParameterStore& params) {
  params_ = &params;
  auto idx = [&](const std::string& name) {
    auto i = params.find(name);
    if (!i) throw std::invalid_argument("gpt: parameter store lacks '" + name + "'");
    return *i;
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

Shape GptModel::residual_shape(BatchShape s) const { return {s.B, s.T, cfg_.d_model}; }

std::vector<ActivationSpec> GptModel::block_activations(BatchShape s) const {
  const std::int64_t B = s.B, T = s.T, C = cfg_.d_model, NH = cfg_.n_head;
  return {
      {"ln1", {B, T, C}, DType::f32, true},
      {"ln1_mean", {B, T}, DType::f32, false},
      {"ln1_rstd", {B, T}, DType::f32, false},
      {"qkv", {B, T, 3 * C}, DType::f32, false},
      // Per query row log-sum-exp: all the fused attention backward needs besides qkv and
      // att_y. Small (no T x T), but remaking it means rerunning attention: not cheap.
      {"att_lse", {B, NH, T}, DType::f32, false},
      {"att_y", {B, T, C}, DType::f32, false},
      {"res2", {B, T, C}, DType::f32, false},
      {"ln2", {B, T, C}, DType::f32, true},
      {"ln2_mean", {B, T}, DType::f32, false},
      {"ln2_rstd", {B, T}, DType::f32, false},
      {"fc", {B, T, 4 * C}, DType::f32, false},
      {"gelu", {B, T, 4 * C}, DType::f32, true},
  };
}

double GptModel::flops_per_token() const {
  double n = 0;
  for (const auto& p : parameters()) n += static_cast<double>(trainer::shape_numel(p.shape));
  return 6.0 * n + 12.0 * cfg_.n_layer * cfg_.d_model * cfg_.seq_len;
}

void GptModel::embed_forward(const trainer::StepContext& ctx, BatchShape s, const Tensor& tokens,
                             const Tensor& x0, trainer::BlockActivations&) {
  be_.embedding_forward(x0, tokens, w(wte_), w(wpe_), s.B, s.T, cfg_.d_model);
  be_.dropout_forward(x0, x0, dropout_p(ctx), ctx.dropout_key(0), x0.numel());
}

void GptModel::embed_backward(const trainer::StepContext& ctx, BatchShape s, const Tensor& tokens,
                              const Tensor& dx, trainer::BlockActivations& acts) {
  Tensor d = acts.scratch(dx.shape());
  be_.dropout_backward(d, dx, dropout_p(ctx), ctx.dropout_key(0), dx.numel());
  be_.embedding_backward(g(wte_), g(wpe_), d, tokens, s.B, s.T, cfg_.d_model);
}

void GptModel::block_forward(int block, const trainer::StepContext& ctx, BatchShape s, const Tensor& x,
                             const Tensor& out, trainer::BlockActivations& acts) {
  const auto& p = blocks_.at(static_cast<std::size_t>(block));
  const int B = s.B, T = s.T, C = cfg_.d_model, N = B * T;
  const float pdrop = dropout_p(ctx);

  Tensor ln1 = acts.get("ln1"), m1 = acts.get("ln1_mean"), r1 = acts.get("ln1_rstd");
  if (acts.missing({"ln1", "ln1_mean", "ln1_rstd"})) {
    be_.layernorm_forward(ln1, m1, r1, x, w(p.ln1_w), w(p.ln1_b), N, C);
  }
  Tensor qkv = acts.get("qkv");
  if (acts.missing({"qkv"})) be_.matmul_forward(qkv, ln1, w(p.qkv_w), w(p.qkv_b), N, C, 3 * C);
  Tensor att_y = acts.get("att_y"), att_lse = acts.get("att_lse");
  if (acts.missing({"att_y", "att_lse"})) be_.attention_forward(att_y, att_lse, qkv, B, T, C, cfg_.n_head);
  Tensor res2 = acts.get("res2");
  if (acts.missing({"res2"})) {
    Tensor proj = acts.scratch({B, T, C});
    be_.matmul_forward(proj, att_y, w(p.proj_w), w(p.proj_b), N, C, C);
    be_.dropout_forward(proj, proj, pdrop, ctx.dropout_key(attn_site(block)), proj.numel());
    be_.residual_forward(res2, x, proj, proj.numel());
  }
  Tensor ln2 = acts.get("ln2"), m2 = acts.get("ln2_mean"), r2 = acts.get("ln2_rstd");
  if (acts.missing({"ln2", "ln2_mean", "ln2_rstd"})) {
    be_.layernorm_forward(ln2, m2, r2, res2, w(p.ln2_w), w(p.ln2_b), N, C);
  }
  Tensor fc = acts.get("fc");
  if (acts.missing({"fc"})) be_.matmul_forward(fc, ln2, w(p.fc_w), w(p.fc_b), N, C, 4 * C);
  Tensor gelu = acts.get("gelu");
  if (acts.missing({"gelu"})) be_.gelu_forward(gelu, fc, fc.numel());
  if (acts.recomputing()) return;  // the block output is not needed to run backward

  Tensor proj2 = acts.scratch({B, T, C});
  be_.matmul_forward(proj2, gelu, w(p.fcproj_w), w(p.fcproj_b), N, 4 * C, C);
  be_.dropout_forward(proj2, proj2, pdrop, ctx.dropout_key(mlp_site(block)), proj2.numel());
  be_.residual_forward(out, res2, proj2, proj2.numel());
}

void GptModel::block_backward(int block, const trainer::StepContext& ctx, BatchShape s, const Tensor& x,
                              const Tensor& dresid, trainer::BlockActivations& acts) {
  const auto& p = blocks_.at(static_cast<std::size_t>(block));
  const int B = s.B, T = s.T, C = cfg_.d_model, N = B * T;
  const float pdrop = dropout_p(ctx);
  const Tensor ln1 = acts.get("ln1"), m1 = acts.get("ln1_mean"), r1 = acts.get("ln1_rstd");
  const Tensor qkv = acts.get("qkv"), att_lse = acts.get("att_lse"), att_y = acts.get("att_y");
  const Tensor res2 = acts.get("res2"), ln2 = acts.get("ln2"), m2 = acts.get("ln2_mean"),
               r2 = acts.get("ln2_rstd"), fc = acts.get("fc"), gelu = acts.get("gelu");

  // MLP branch: out = res2 + dropout(gelu(ln2 @ fc) @ proj)
  Tensor dproj2 = acts.scratch({B, T, C});
  be_.dropout_backward(dproj2, dresid, pdrop, ctx.dropout_key(mlp_site(block)), dproj2.numel());
  Tensor dgelu = acts.scratch({B, T, 4 * C});
  be_.matmul_backward(dgelu, g(p.fcproj_w), g(p.fcproj_b), dproj2, gelu, w(p.fcproj_w), N, 4 * C, C);
  Tensor dfc = acts.scratch({B, T, 4 * C});
  be_.gelu_backward(dfc, fc, dgelu, dfc.numel());
  Tensor dln2 = acts.scratch({B, T, C});
  be_.matmul_backward(dln2, g(p.fc_w), g(p.fc_b), dfc, ln2, w(p.fc_w), N, C, 4 * C);
  be_.layernorm_backward(dresid, g(p.ln2_w), g(p.ln2_b), dln2, res2, w(p.ln2_w), m2, r2, N, C);

  // Attention branch: res2 = x + dropout(attention(ln1 @ qkv) @ proj)
  Tensor dproj = acts.scratch({B, T, C});
  be_.dropout_backward(dproj, dresid, pdrop, ctx.dropout_key(attn_site(block)), dproj.numel());
  Tensor datt_y = acts.scratch({B, T, C});
  be_.matmul_backward(datt_y, g(p.proj_w), g(p.proj_b), dproj, att_y, w(p.proj_w), N, C, C);
  Tensor dqkv = acts.scratch({B, T, 3 * C});
  be_.attention_backward(dqkv, datt_y, qkv, att_y, att_lse, B, T, C, cfg_.n_head);
  Tensor dln1 = acts.scratch({B, T, C});
  be_.matmul_backward(dln1, g(p.qkv_w), g(p.qkv_b), dqkv, ln1, w(p.qkv_w), N, C, 3 * C);
  be_.layernorm_backward(dresid, g(p.ln1_w), g(p.ln1_b), dln1, x, w(p.ln1_w), m1, r1, N, C);
}

double GptModel::head_forward_backward(const trainer::StepContext&, BatchShape s, const Tensor& x,
                                       const Tensor& targets, float dloss, const Tensor& dx,
                                       trainer::BlockActivations& acts) {
  const int B = s.B, T = s.T, C = cfg_.d_model, V = cfg_.vocab, N = B * T;
  Tensor lnf = acts.scratch({B, T, C}), mf = acts.scratch({B, T}), rf = acts.scratch({B, T});
  be_.layernorm_forward(lnf, mf, rf, x, w(lnf_w_), w(lnf_b_), N, C);
  Tensor logits = acts.scratch({B, T, V});
  be_.matmul_forward(logits, lnf, w(head_w_), Tensor(), N, C, V);
  Tensor losses = acts.scratch({B, T});
  // The gradient overwrites the logits in place: one [N,V] buffer, never two.
  be_.crossentropy_forward_backward(losses, dx ? logits : Tensor(), logits, targets, dloss, N, V);
  std::vector<float> host(static_cast<std::size_t>(N));
  be_.copy_to_host(host.data(), losses);
  double sum = 0;
  for (float l : host) sum += l;
  if (dx) {
    Tensor dlnf = acts.scratch({B, T, C});
    be_.matmul_backward(dlnf, g(head_w_), Tensor(), logits, lnf, w(head_w_), N, C, V);
    be_.fill_zero(dx);
    be_.layernorm_backward(dx, g(lnf_w_), g(lnf_b_), dlnf, x, w(lnf_w_), mf, rf, N, C);
  }
  return sum;
}

// The forward half of head_forward_backward, stopping at the logits.
void GptModel::head_logits(const trainer::StepContext&, BatchShape s, const Tensor& x, const Tensor& logits,
                           trainer::BlockActivations& acts) {
  const int B = s.B, T = s.T, C = cfg_.d_model, V = cfg_.vocab, N = B * T;
  Tensor lnf = acts.scratch({B, T, C}), mf = acts.scratch({B, T}), rf = acts.scratch({B, T});
  be_.layernorm_forward(lnf, mf, rf, x, w(lnf_w_), w(lnf_b_), N, C);
  be_.matmul_forward(logits, lnf, w(head_w_), Tensor(), N, C, V);
}

}  // namespace gpt
