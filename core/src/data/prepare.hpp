// Text → token shards with the byte-level tokenizer (token = byte value, vocabulary 256):
// no vocabulary file, lossless on any input, the tokenizer of char-level nanoGPT runs.
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace trainer::data {

inline constexpr int kByteVocabSize = 256;

struct PrepareResult {
  std::uint64_t train_tokens = 0;
  std::uint64_t val_tokens = 0;
  std::filesystem::path train;  // <out_dir>/train.bin
  std::filesystem::path val;    // <out_dir>/val.bin
};

// Concatenates the inputs' bytes in order; the last val_fraction of the tokens become the
// validation split (nanoGPT: train = first floor(n * (1 - val_fraction)) tokens). Writes
// train.bin, val.bin and dataset.json into out_dir (created if needed). val_fraction must
// lie in [0, 1). Missing, unreadable or empty inputs throw std::runtime_error naming the file.
PrepareResult prepare_text(const std::vector<std::filesystem::path>& inputs,
                           const std::filesystem::path& out_dir, double val_fraction);

// Tokens back to text; throws std::invalid_argument for a token outside [0, 255].
std::string decode_bytes(std::span<const int> tokens);

}  // namespace trainer::data
