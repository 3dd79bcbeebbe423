// A synthetic corpus with an exactly known loss floor: tokens from a sparse Markov chain
// (see markov_chain.hpp) whose entropy rate is computed from the chain itself. A model
// trained on it can be judged against the floor instead of against other runs.
//
// The floor applies to predictions made with the full `order` tokens of context; the
// first `order` positions of a training window see less and cannot reach it. With a small
// concentration (<< 1) most successors get negligible probability, the chain mixes slowly,
// and a finite sample's cross-entropy can sit well away from the floor (val_empirical_nats
// shows it); with the default concentration 1 they agree to a fraction of a percent.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>

namespace trainer::data {

struct SynthSpec {
  int vocab = 64;
  int order = 1;
  int branching = 4;
  std::uint64_t train_tokens = 2'000'000, val_tokens = 200'000;
  std::uint64_t seed = 1234;
  double concentration = 1.0;
};

struct SynthResult {
  double entropy_nats = 0.0;        // entropy rate of the chain: the loss floor
  double val_empirical_nats = 0.0;  // mean -log P(token | state) over val under the true chain
  std::uint64_t train_tokens = 0;
  std::uint64_t val_tokens = 0;
  std::filesystem::path train;         // <out_dir>/train.bin
  std::filesystem::path val;           // <out_dir>/val.bin
  std::filesystem::path dataset_json;  // <out_dir>/dataset.json
};

// Builds the chain from spec.seed and generates train and val as two independent
// stationary continuations of it (each starts from a state drawn from the stationary
// distribution, with its own seed derived from spec.seed). The files depend only on the
// spec: identical on every platform. Throws std::invalid_argument for a bad spec
// (vocab in [2, 65536], vocab^order <= 2^20, token counts in [1, 2^31 - 1]).
SynthResult synth_corpus(const SynthSpec& spec, const std::filesystem::path& out_dir);

// The entropy floor recorded in a dataset.json (given the file or its directory);
// nullopt when there is no dataset.json or it has no floor (e.g. a text dataset).
// Throws std::runtime_error if the file exists but is malformed.
std::optional<double> read_entropy_floor(const std::filesystem::path& dataset_json_or_dir);

}  // namespace trainer::data
