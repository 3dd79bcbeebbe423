#include "data/prepare.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "data/atomic_file.hpp"
#include "data/dataset_json.hpp"
#include "data/token_shard.hpp"

namespace trainer::data {
namespace {

void append_file_tokens(const std::filesystem::path& path, std::vector<std::uint16_t>& out) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw std::runtime_error(fmt::format("{}: input file not found", path.string()));
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw std::runtime_error(fmt::format("{}: input is a directory, not a text file", path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open input file", path.string()));
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot stat input file: {}", path.string(), ec.message()));
  if (size == 0) throw std::runtime_error(fmt::format("{}: input file is empty", path.string()));
  std::vector<char> bytes(size);  // one read: corpora can be hundreds of MB
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) {
    throw std::runtime_error(fmt::format("{}: read error", path.string()));
  }
  out.reserve(out.size() + bytes.size());
  for (const char c : bytes) out.push_back(static_cast<unsigned char>(c));
}

}  // namespace

PrepareResult prepare_text(const std::vector<std::filesystem::path>& inputs,
                           const std::filesystem::path& out_dir, double val_fraction) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {  // also rejects NaN
    throw std::invalid_argument(fmt::format("val_fraction must be in [0, 1), got {}", val_fraction));
  }
  if (inputs.empty()) throw std::invalid_argument("prepare_text: no input files");

  std::vector<std::uint16_t> tokens;
  std::vector<std::string> sources;
  for (const auto& input : inputs) {
    append_file_tokens(input, tokens);
    sources.push_back(std::filesystem::absolute(input).lexically_normal().string());
  }

  // Same arithmetic as nanoGPT's `data[:int(n*0.9)]`, so splits match its .bin files.
  const std::size_t n = tokens.size();
  auto n_train = static_cast<std::size_t>(std::floor(static_cast<double>(n) * (1.0 - val_fraction)));
  n_train = std::min(n_train, n);
  if (n_train == 0) {
    throw std::invalid_argument(fmt::format(
        "prepare_text: {} tokens with val_fraction {} leave no training tokens", n, val_fraction));
  }
  const std::span<const std::uint16_t> all(tokens);

  std::filesystem::create_directories(out_dir);
  PrepareResult result;
  result.train = out_dir / "train.bin";
  result.val = out_dir / "val.bin";
  result.train_tokens = n_train;
  result.val_tokens = n - n_train;
  write_token_shard(result.train, all.first(n_train));
  write_token_shard(result.val, all.subspan(n_train));

  JsonObjectWriter json;
  json.add_string("tokenizer", "bytes")
      .add_integer("vocab_size", kByteVocabSize)
      .add_unsigned("train_tokens", result.train_tokens)
      .add_unsigned("val_tokens", result.val_tokens)
      .add_number("val_fraction", val_fraction)
      .add_string("train", "train.bin")
      .add_string("val", "val.bin")
      .add_strings("sources", sources);
  // Written last: its presence marks a complete dataset directory.
  write_text_atomically(out_dir / "dataset.json", json.str());
  return result;
}

std::string decode_bytes(std::span<const int> tokens) {
  std::string out;
  out.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const int t = tokens[i];
    if (t < 0 || t >= kByteVocabSize) {
      throw std::invalid_argument(
          fmt::format("decode_bytes: token {} at position {} is not a byte", t, i));
    }
    out += static_cast<char>(static_cast<unsigned char>(t));
  }
  return out;
}

}  // namespace trainer::data
