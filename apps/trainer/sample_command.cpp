// trainer sample RUN_DIR --prompt TEXT [--tokens N] [--temperature T] [--top-k K] [--seed S]
//                [--checkpoint STEP]: text generated from a run's checkpoint. The prompt and
// its continuation go to stdout; what was loaded, and any checkpoint skipped, to stderr.
#include <fmt/format.h>

#include <cstdio>
#include <optional>
#include <type_traits>

#include "commands.hpp"
#include "generate/generator.hpp"
#include "generate/tokenizer.hpp"
#include "generate/trained_model.hpp"
#include "recipe/diagnostics.hpp"

namespace trainer::cli {
namespace {

constexpr const char* kSampleUsage =
    "usage: trainer sample RUN_DIR --prompt TEXT [--tokens N] [--temperature T] [--top-k K] [--seed S]\n"
    "                      [--checkpoint STEP]\n"
    "  generates N tokens (default 100) after TEXT from the run's newest good checkpoint (or step STEP);\n"
    "  temperature 0 is greedy; the same seed gives the same text\n";

struct SampleArgs {
  std::string run_dir;
  std::optional<std::string> prompt;
  int tokens = 100;
  generate::SamplingOptions sampling;
  std::optional<std::int64_t> checkpoint;
};

// A whole-string number, or nullopt.
template <class T>
std::optional<T> parse_number(const std::string& text) {
  try {
    std::size_t used = 0;
    if constexpr (std::is_floating_point_v<T>) {
      const double v = std::stod(text, &used);
      if (used == text.size()) return static_cast<T>(v);
    } else {
      const long long v = std::stoll(text, &used);
      if (used == text.size()) return static_cast<T>(v);
    }
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

bool parse_sample_args(const Args& args, SampleArgs& out) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    const bool is_flag = flag.rfind("--", 0) == 0;
    if (!is_flag) {
      if (!out.run_dir.empty()) {
        fmt::print(stderr, "trainer sample: unexpected argument '{}' (quote a prompt with spaces)\n", flag);
        return false;
      }
      out.run_dir = flag;
      continue;
    }
    if (const auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      fmt::print(stderr, "trainer sample: {} needs a value\n", flag);
      return false;
    }
    const auto bad = [&](const char* what) {
      fmt::print(stderr, "trainer sample: {} {}: expected {}\n", flag, value, what);
      return false;
    };
    if (flag == "--prompt") {
      out.prompt = value;
    } else if (flag == "--tokens") {
      const auto v = parse_number<long long>(value);
      if (!v || *v < 0 || *v > 1'000'000) return bad("a token count in [0, 1000000]");
      out.tokens = static_cast<int>(*v);
    } else if (flag == "--temperature") {
      const auto v = parse_number<double>(value);
      if (!v || !(*v >= 0) || *v > 1e6) return bad("a temperature >= 0 (0: greedy)");
      out.sampling.temperature = *v;
    } else if (flag == "--top-k") {
      const auto v = parse_number<long long>(value);
      if (!v || *v < 0 || *v > (1 << 30)) return bad("a count >= 0 (0: no limit)");
      out.sampling.top_k = static_cast<int>(*v);
    } else if (flag == "--seed") {
      const auto v = parse_number<long long>(value);
      if (!v || *v < 0) return bad("an integer >= 0");
      out.sampling.seed = static_cast<std::uint64_t>(*v);
    } else if (flag == "--checkpoint") {
      const auto v = parse_number<long long>(value);
      if (!v || *v < 0) return bad("a checkpoint's step (see `trainer checkpoint inspect`)");
      out.checkpoint = *v;
    } else {
      fmt::print(stderr, "trainer sample: unknown option '{}'\n", flag);
      return false;
    }
  }
  if (out.run_dir.empty() || !out.prompt) {
    fmt::print(stderr, "trainer sample: {}\n", out.run_dir.empty() ? "no RUN_DIR given" : "no --prompt given");
    return false;
  }
  return true;
}

}  // namespace

int sample_command(const Args& args) {
  SampleArgs a;
  if (!parse_sample_args(args, a)) {
    fmt::print(stderr, "{}", kSampleUsage);
    return 2;
  }
  try {
    generate::TrainedModel run = generate::load_trained_model(a.run_dir, a.checkpoint);
    for (const auto& w : run.warnings) fmt::print(stderr, "warning: {}\n", w);
    const auto tokenizer = generate::Tokenizer::for_dataset(run.recipe.at("data").get_string("train"),
                                                            run.model->vocab_size());
    std::vector<std::int32_t> prompt;
    try {
      prompt = tokenizer.encode(*a.prompt);
    } catch (const generate::TokenizerError& e) {
      fmt::print(stderr, "trainer sample: cannot encode the prompt: {}\n", e.what());
      return 2;
    }
    fmt::print(stderr, "sampling {} tokens from {} (after step {}) on backend {}; tokenizer {}, temperature {}{}, seed {}\n",
               a.tokens, run.checkpoint.string(), run.step, run.recipe.at("backend").get_string("plugin"),
               tokenizer.name(), a.sampling.temperature,
               a.sampling.top_k > 0 ? fmt::format(", top-k {}", a.sampling.top_k) : std::string(), a.sampling.seed);
    generate::Generator generator(*run.backend, *run.model);
    const auto continuation = generator.generate(prompt, a.tokens, a.sampling);
    std::string text = tokenizer.decode(prompt);
    if (!continuation.empty()) text += tokenizer.separator() + tokenizer.decode(continuation);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  } catch (const recipe::RecipeError& e) {
    fmt::print(stderr, "trainer sample: {}/recipe.yaml does not validate:\n{}", a.run_dir, e.what());
    return 2;
  } catch (const generate::TokenizerError& e) {
    fmt::print(stderr, "trainer sample: {}\n", e.what());
    return 1;
  } catch (const generate::RunError& e) {
    fmt::print(stderr, "trainer sample: {}\n", e.what());
    return 1;
  }
}

}  // namespace trainer::cli
