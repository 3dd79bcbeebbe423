#include "generate/tokenizer.hpp"

#include <fmt/format.h>

#include <cctype>
#include <sstream>

#include "data/dataset_json.hpp"
#include "data/prepare.hpp"

namespace trainer::generate {

Tokenizer::Tokenizer(Kind kind, std::string name, int vocab) : kind_(kind), name_(std::move(name)), vocab_(vocab) {}

Tokenizer Tokenizer::for_dataset(const std::filesystem::path& train_shard, int model_vocab) {
  const auto file = train_shard.parent_path() / "dataset.json";
  if (!std::filesystem::exists(file)) {
    throw TokenizerError(fmt::format(
        "cannot tell the run's tokenizer: {} does not exist (it is written beside the recipe's data.train, {}); "
        "sample from the directory the run was trained in, or restore the dataset",
        file.string(), train_shard.string()));
  }
  std::map<std::string, data::JsonValue> json;
  try {
    json = data::read_flat_json(file);
  } catch (const std::exception& e) {
    throw TokenizerError(e.what());
  }
  const auto it = json.find("tokenizer");
  const std::string name = it == json.end() ? std::string() : it->second.text;
  if (name == "bytes") return Tokenizer(Kind::bytes, name, model_vocab);
  if (name == "synthetic-markov") return Tokenizer(Kind::token_ids, name, model_vocab);
  throw TokenizerError(fmt::format("{}: tokenizer '{}' is not one `trainer sample` knows (bytes, synthetic-markov)",
                                   file.string(), name));
}

std::vector<std::int32_t> Tokenizer::encode(const std::string& prompt) const {
  std::vector<std::int32_t> tokens;
  if (kind_ == Kind::bytes) {
    for (std::size_t i = 0; i < prompt.size(); ++i) {
      const int b = static_cast<unsigned char>(prompt[i]);
      if (b >= vocab_) {
        throw TokenizerError(fmt::format("the prompt's byte 0x{:02x} at offset {} is not in the model's vocabulary "
                                         "of {} tokens (byte-level tokenizer: token = byte value)",
                                         b, i, vocab_));
      }
      tokens.push_back(b);
    }
  } else {
    std::istringstream words(prompt);
    for (std::string w; words >> w;) {
      std::size_t used = 0;
      long long v = -1;
      try {
        v = std::stoll(w, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != w.size() || v < 0 || v >= vocab_) {
        throw TokenizerError(fmt::format(
            "the prompt's word '{}' is not a token: the {} tokenizer has no text, its tokens are the numbers "
            "0..{}; give the prompt as token numbers separated by spaces, e.g. --prompt \"3 14 15\"",
            w, name_, vocab_ - 1));
      }
      tokens.push_back(static_cast<std::int32_t>(v));
    }
  }
  if (tokens.empty()) throw TokenizerError("the prompt is empty: give at least one token to continue from");
  return tokens;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& tokens) const {
  if (kind_ == Kind::bytes) {
    const std::vector<int> ints(tokens.begin(), tokens.end());
    return data::decode_bytes(ints);
  }
  std::string out;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i) out += ' ';
    out += std::to_string(tokens[i]);
  }
  return out;
}

}  // namespace trainer::generate
