#include "data/synth.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "data/atomic_file.hpp"
#include "data/dataset_json.hpp"
#include "data/markov_chain.hpp"
#include "data/token_shard.hpp"
#include "trainer/rng.hpp"

namespace trainer::data {
namespace {

// Independent engines for the chain and for each split, all from the one spec seed.
enum SynthStream : std::uint64_t { kChainStream = 0x5359'4e54'4348'4e00ull, kTrainStream, kValStream };

std::uint64_t derive_seed(std::uint64_t seed, SynthStream stream) {
  return rng_bits(RngKey{seed, stream}, 0);
}

// Generates n tokens; returns the summed -log P(token | state) under the true chain.
double generate(const MarkovChain& chain, const std::vector<double>& pi, std::uint64_t seed,
                std::vector<std::uint16_t>& out) {
  Engine engine(seed);
  // Start in a state drawn from pi so the sequence is stationary from its first token.
  const double u0 = uniform01(engine);
  double cumulative = 0.0;
  std::uint64_t state = 0;
  for (std::uint64_t s = 0; s < pi.size(); ++s) {
    if (pi[s] > 0.0) state = s;  // the last reachable state absorbs rounding
    cumulative += pi[s];
    if (u0 < cumulative && pi[s] > 0.0) break;
  }
  double nll = 0.0;
  for (auto& token : out) {
    const int slot = chain.pick(state, uniform01(engine));
    token = chain.successors(state)[static_cast<std::size_t>(slot)];
    nll -= std::log(chain.probabilities(state)[static_cast<std::size_t>(slot)]);
    state = chain.next_state(state, token);
  }
  return nll;
}

void check_count(const char* name, std::uint64_t n) {
  const auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
  if (n < 1 || n > max) {
    throw std::invalid_argument(fmt::format("synthetic {} must be in [1, {}], got {}", name, max, n));
  }
}

}  // namespace

SynthResult synth_corpus(const SynthSpec& spec, const std::filesystem::path& out_dir) {
  check_count("train_tokens", spec.train_tokens);
  check_count("val_tokens", spec.val_tokens);
  const MarkovChain chain(MarkovParams{spec.vocab, spec.order, spec.branching, spec.concentration,
                                       derive_seed(spec.seed, kChainStream)});
  const std::vector<double> pi = chain.stationary();

  SynthResult result;
  result.entropy_nats = chain.entropy_rate(pi);
  result.train_tokens = spec.train_tokens;
  result.val_tokens = spec.val_tokens;
  std::vector<std::uint16_t> train(spec.train_tokens);
  std::vector<std::uint16_t> val(spec.val_tokens);
  generate(chain, pi, derive_seed(spec.seed, kTrainStream), train);
  result.val_empirical_nats =
      generate(chain, pi, derive_seed(spec.seed, kValStream), val) / static_cast<double>(val.size());

  std::filesystem::create_directories(out_dir);
  result.train = out_dir / "train.bin";
  result.val = out_dir / "val.bin";
  result.dataset_json = out_dir / "dataset.json";
  write_token_shard(result.train, train);
  write_token_shard(result.val, val);

  JsonObjectWriter json;
  json.add_string("tokenizer", "synthetic-markov")
      .add_integer("vocab_size", spec.vocab)
      .add_integer("order", spec.order)
      .add_integer("branching", spec.branching)
      .add_unsigned("seed", spec.seed)
      .add_number("concentration", spec.concentration)
      .add_unsigned("train_tokens", result.train_tokens)
      .add_unsigned("val_tokens", result.val_tokens)
      .add_number("entropy_floor_nats", result.entropy_nats)
      .add_number("val_empirical_nats", result.val_empirical_nats)
      .add_string("train", "train.bin")
      .add_string("val", "val.bin");
  write_text_atomically(result.dataset_json, json.str());  // last: marks the set complete
  return result;
}

std::optional<double> read_entropy_floor(const std::filesystem::path& dataset_json_or_dir) {
  std::filesystem::path file = dataset_json_or_dir;
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) file /= "dataset.json";
  if (!std::filesystem::exists(file, ec)) return std::nullopt;
  const auto object = read_flat_json(file);
  const auto it = object.find("entropy_floor_nats");
  if (it == object.end()) return std::nullopt;
  if (it->second.kind != JsonValue::Kind::number) {
    throw std::runtime_error(fmt::format("{}: entropy_floor_nats is not a number", file.string()));
  }
  return it->second.as_number();
}

}  // namespace trainer::data
