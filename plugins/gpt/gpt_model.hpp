// GptModel: a GPT-2 style decoder (pre-norm blocks, learned positions, GELU MLP, optional
// tied embeddings) expressed as explicit per-block forward and backward over Backend ops.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "trainer/backend.hpp"
#include "trainer/model.hpp"

namespace gpt {

struct GptConfig {
  int n_layer = 4;
  int n_head = 4;
  int d_model = 128;
  int vocab = 256;
  int seq_len = 128;
  float dropout = 0.0f;
  bool tied_embeddings = true;
};

class GptModel final : public trainer::Model {
 public:
  GptModel(trainer::Backend& backend, GptConfig config);

  void configure_parallel(const trainer::ModelParallel& parallel) override;
  std::vector<trainer::ParameterSpec> parameters() const override;
  void bind(const trainer::ParameterStore& params) override;
  int num_blocks() const override { return cfg_.n_layer; }
  int seq_len() const override { return cfg_.seq_len; }
  int vocab_size() const override { return cfg_.vocab; }
  trainer::Shape residual_shape(trainer::BatchShape s) const override;
  std::vector<trainer::ActivationSpec> block_activations(trainer::BatchShape s) const override;
  double flops_per_token() const override;

  void embed_forward(const trainer::StepContext& ctx, trainer::BatchShape s, const trainer::Tensor& tokens,
                     const trainer::Tensor& x0, trainer::BlockActivations& acts) override;
  void embed_backward(const trainer::StepContext& ctx, trainer::BatchShape s, const trainer::Tensor& tokens,
                      const trainer::Tensor& dx, trainer::BlockActivations& acts) override;
  void block_forward(int block, const trainer::StepContext& ctx, trainer::BatchShape s,
                     const trainer::Tensor& x, const trainer::Tensor& out,
                     trainer::BlockActivations& acts) override;
  void block_backward(int block, const trainer::StepContext& ctx, trainer::BatchShape s,
                      const trainer::Tensor& x, const trainer::Tensor& dresid,
                      trainer::BlockActivations& acts) override;
  double head_forward_backward(const trainer::StepContext& ctx, trainer::BatchShape s,
                               const trainer::Tensor& x, const trainer::Tensor& targets, float dloss,
                               const trainer::Tensor& dx, trainer::BlockActivations& acts) override;
  bool head_forward_backward_on_device(const trainer::StepContext& ctx, trainer::BatchShape s,
                                       const trainer::Tensor& x, const trainer::Tensor& targets, float dloss,
                                       const trainer::Tensor& dx, trainer::BlockActivations& acts,
                                       const trainer::Tensor& loss_sum, double loss_scale) override;
  void head_logits(const trainer::StepContext& ctx, trainer::BatchShape s, const trainer::Tensor& x,
                   const trainer::Tensor& logits, trainer::BlockActivations& acts) override;

 private:
  // Indices into the parameter store of one block's tensors.
  struct BlockParams {
    std::size_t ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, fcproj_w, fcproj_b;
  };
  // The compute copy (bf16 under mixed precision, else the f32 value itself).
  trainer::Tensor w(std::size_t i) const { return params_->compute_value(i); }
  trainer::Tensor g(std::size_t i) const { return params_->grad(i); }
  // Layernorms over this rank's token rows (all of them unless sequence parallel), see the .cpp.
  void norm_forward(const trainer::Tensor& whole, const trainer::Tensor& mean, const trainer::Tensor& rstd,
                    const trainer::Tensor& inp, std::size_t weight, std::size_t bias, int rows,
                    trainer::BlockActivations& acts);
  void norm_backward(const trainer::Tensor& dinp, std::size_t weight, std::size_t bias, const trainer::Tensor& dout,
                     const trainer::Tensor& inp, const trainer::Tensor& mean, const trainer::Tensor& rstd, int rows,
                     trainer::BlockActivations& acts);
  // Both head entry points: with loss_sum, the loss is added there on the device and 0 is
  // returned; without, the summed loss is read back and returned.
  double head(trainer::BatchShape s, const trainer::Tensor& x, const trainer::Tensor& targets, float dloss,
              const trainer::Tensor& dx, trainer::BlockActivations& acts, const trainer::Tensor& loss_sum,
              double loss_scale);
  float dropout_p(const trainer::StepContext& ctx) const { return ctx.training ? cfg_.dropout : 0.0f; }
  // Dropout sites: 0 after the embedding, then two per block.
  static int attn_site(int block) { return 1 + 2 * block; }
  static int mlp_site(int block) { return 2 + 2 * block; }

  trainer::Backend& be_;
  GptConfig cfg_;
  trainer::ModelParallel par_;                   // tp 1 unless configure_parallel says otherwise
  std::unique_ptr<trainer::TensorParallel> tp_;  // the split layers' collectives
  const trainer::ParameterStore* params_ = nullptr;
  trainer::DType act_ = trainer::DType::f32;  // activations: the store's compute dtype
  std::size_t wte_ = 0, wpe_ = 0, lnf_w_ = 0, lnf_b_ = 0, head_w_ = 0;
  std::vector<BlockParams> blocks_;
};

}  // namespace gpt
