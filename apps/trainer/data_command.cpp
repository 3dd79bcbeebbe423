// trainer data prepare / trainer data synth: make token shards.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "commands.hpp"
#include "data/prepare.hpp"
#include "data/synth.hpp"

namespace trainer::cli {
namespace {

constexpr const char* kDataUsage =
    "usage: trainer data prepare --out DIR [--val-fraction F] FILE...\n"
    "       trainer data synth --out DIR [--vocab N] [--order N] [--branching N] [--train-tokens N]\n"
    "                          [--val-tokens N] [--seed N] [--concentration X]\n";

// --key value pairs, and the remaining positional arguments.
bool parse_options(const Args& args, std::size_t first, const std::vector<std::string>& known,
                   std::map<std::string, std::string>& options, std::vector<std::string>& positional) {
  for (std::size_t i = first; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a.rfind("--", 0) != 0) {
      positional.push_back(a);
      continue;
    }
    const auto key = a.substr(2);
    if (std::find(known.begin(), known.end(), key) == known.end() || i + 1 >= args.size()) {
      fmt::print(stderr, "trainer data: {} '{}'\n{}", i + 1 >= args.size() ? "missing value for" : "unknown option", a,
                 kDataUsage);
      return false;
    }
    options[key] = args[++i];
  }
  return true;
}

template <class T>
bool number(const std::map<std::string, std::string>& o, const std::string& key, T& out) {
  auto it = o.find(key);
  if (it == o.end()) return true;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (!end || *end != '\0' || it->second.empty()) {
    fmt::print(stderr, "trainer data: --{} expects a number, got '{}'\n", key, it->second);
    return false;
  }
  out = static_cast<T>(v);
  return true;
}

}  // namespace

int data_command(const Args& args) {
  if (args.empty() || (args[0] != "prepare" && args[0] != "synth")) {
    fmt::print(stderr, "{}", kDataUsage);
    return 2;
  }
  std::map<std::string, std::string> o;
  std::vector<std::string> files;
  if (args[0] == "prepare") {
    if (!parse_options(args, 1, {"out", "val-fraction"}, o, files)) return 2;
    double val_fraction = 0.1;
    if (!number(o, "val-fraction", val_fraction)) return 2;
    if (!o.count("out") || files.empty() || val_fraction <= 0 || val_fraction >= 1) {
      fmt::print(stderr, "trainer data prepare: needs --out DIR, at least one FILE, and 0 < val-fraction < 1\n{}",
                 kDataUsage);
      return 2;
    }
    std::vector<std::filesystem::path> inputs(files.begin(), files.end());
    const auto r = data::prepare_text(inputs, o["out"], val_fraction);
    fmt::print("wrote {} ({} tokens) and {} ({} tokens); byte-level tokenizer, vocab 256\n", r.train.string(),
               r.train_tokens, r.val.string(), r.val_tokens);
    return 0;
  }
  if (!parse_options(args, 1, {"out", "vocab", "order", "branching", "train-tokens", "val-tokens", "seed",
                               "concentration"},
                     o, files)) {
    return 2;
  }
  data::SynthSpec spec;
  if (!o.count("out") || !files.empty() || !number(o, "vocab", spec.vocab) || !number(o, "order", spec.order) ||
      !number(o, "branching", spec.branching) || !number(o, "train-tokens", spec.train_tokens) ||
      !number(o, "val-tokens", spec.val_tokens) || !number(o, "seed", spec.seed) ||
      !number(o, "concentration", spec.concentration)) {
    fmt::print(stderr, "{}", kDataUsage);
    return 2;
  }
  const auto r = data::synth_corpus(spec, o["out"]);
  fmt::print("wrote {} and {}; entropy floor {:.6f} nats/token (empirical on val: {:.6f})\n", r.train.string(),
             r.val.string(), r.entropy_nats, r.val_empirical_nats);
  return 0;
}

}  // namespace trainer::cli
