// The tokenizer a run was trained with, as its dataset's dataset.json names it, for turning
// a prompt into tokens and generated tokens back into text. Two exist today:
//   bytes             token = byte value (trainer data prepare): prompts are any text.
//   synthetic-markov  token ids with no text (trainer data synth): prompts and output are
//                     token numbers separated by spaces.
#pragma once
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer::generate {

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Tokenizer {
 public:
  enum class Kind { bytes, token_ids };
  Tokenizer(Kind kind, std::string name, int vocab);

  // The dataset.json beside `train_shard` (the recipe's data.train); its vocabulary must fit
  // the model's. Throws TokenizerError naming the file when it is missing or unknown.
  static Tokenizer for_dataset(const std::filesystem::path& train_shard, int model_vocab);

  const std::string& name() const { return name_; }
  Kind kind() const { return kind_; }
  // Throws TokenizerError saying which character or word cannot be encoded, and why.
  std::vector<std::int32_t> encode(const std::string& prompt) const;
  // Bytes: the bytes themselves (lossless); token ids: numbers separated by spaces.
  std::string decode(const std::vector<std::int32_t>& tokens) const;
  // What goes between the prompt and the continuation when both are printed.
  std::string separator() const { return kind_ == Kind::bytes ? "" : " "; }

 private:
  Kind kind_;
  std::string name_;
  int vocab_;
};

}  // namespace trainer::generate
