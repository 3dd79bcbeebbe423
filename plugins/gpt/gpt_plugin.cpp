// The gpt model plugin: recipe keys and the factory.
#include "gpt_model.hpp"
#include "trainer/plugin.hpp"

namespace gpt {
namespace {

std::vector<trainer::KeySpec> keys() {
  using trainer::KeyType;
  return {
      {"n_layer", KeyType::integer, "4", "number of transformer blocks", false, 1, 1024, {}},
      {"n_head", KeyType::integer, "4", "attention heads per block (must divide d_model)", false, 1, 1024, {}},
      {"d_model", KeyType::integer, "128", "width of the residual stream", false, 1, 65536, {}},
      {"vocab", KeyType::integer, "256", "vocabulary size (256 for byte-level data)", false, 2, 1 << 20, {}},
      {"seq_len", KeyType::integer, "128", "context length in tokens", false, 1, 1 << 20, {}},
      {"dropout", KeyType::number, "0.0", "dropout after the embedding and each residual branch", false, 0.0, 0.99, {}},
      {"tied_embeddings", KeyType::boolean, "true", "share the token embedding with the output head", false, {}, {}, {}},
  };
}

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  if (!ctx.backend) throw std::invalid_argument("gpt: created without a backend");
  const auto& c = ctx.config;
  GptConfig cfg;
  cfg.n_layer = static_cast<int>(c.get_int("n_layer"));
  cfg.n_head = static_cast<int>(c.get_int("n_head"));
  cfg.d_model = static_cast<int>(c.get_int("d_model"));
  cfg.vocab = static_cast<int>(c.get_int("vocab"));
  cfg.seq_len = static_cast<int>(c.get_int("seq_len"));
  cfg.dropout = static_cast<float>(c.get_double("dropout"));
  cfg.tied_embeddings = c.get_bool("tied_embeddings");
  if (cfg.d_model % cfg.n_head != 0) {
    throw trainer::ConfigError(c.at("n_head").origin(),
                               "n_head " + std::to_string(cfg.n_head) + " does not divide d_model " +
                                   std::to_string(cfg.d_model) + " (each head needs d_model/n_head columns)");
  }
  return std::make_unique<GptModel>(*ctx.backend, cfg);
}

const trainer::PluginDescriptor kDescriptor{
    trainer::kAbiVersion, trainer::PluginKind::model, "gpt", "0.1.0",
    "GPT-2 style decoder: pre-norm blocks, learned positions, GELU MLP, tied embeddings",
    &create, &keys};

}  // namespace
}  // namespace gpt

TRAINER_PLUGIN(gpt::kDescriptor)
