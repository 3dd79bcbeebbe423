// Sampling: token choice (greedy, temperature, top-k), and generation from a checkpoint of a
// model trained on a Markov source: greedy decoding follows the source's most likely
// transitions, equals the argmax of the engine's logits, is deterministic for a seed, and
// slides its window past the model's context.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>

#include "data/token_shard.hpp"
#include "engine/trainer.hpp"
#include "generate/generator.hpp"
#include "generate/tokenizer.hpp"
#include "generate/trained_model.hpp"
#include "support/recipes.hpp"

using namespace trainer;
using namespace trainer::generate;

TEST_CASE("pick_token: greedy, temperature and top-k", "[generator]") {
  const std::vector<float> logits{1.0f, 3.0f, 3.0f, std::log(0.5f)};
  SamplingOptions greedy;
  greedy.temperature = 0;
  CHECK(pick_token(logits, greedy, 0.99) == 1);  // the largest, the lower id on a tie
  SamplingOptions top1;
  top1.top_k = 1;
  for (double u : {0.0, 0.5, 0.999}) CHECK(pick_token(logits, top1, u) == 1);

  // Probabilities 0.25 and 0.75 at temperature 1; u walks the cumulative distribution in
  // descending-logit order (token 1 first).
  const std::vector<float> two{std::log(0.25f), std::log(0.75f)};
  SamplingOptions t1;
  CHECK(pick_token(two, t1, 0.0) == 1);
  CHECK(pick_token(two, t1, 0.749) == 1);
  CHECK(pick_token(two, t1, 0.751) == 0);
  // Temperature 2 flattens them to sqrt weights: 0.5 / (0.5 + sqrt(0.75)) = 0.366 for token 0.
  SamplingOptions t2;
  t2.temperature = 2;
  const double p1 = std::sqrt(0.75) / (std::sqrt(0.75) + 0.5);
  CHECK(pick_token(two, t2, p1 - 0.001) == 1);
  CHECK(pick_token(two, t2, p1 + 0.001) == 0);
  // Top-2 of four: the two tokens tied at 3.0 share the mass equally.
  SamplingOptions k2;
  k2.top_k = 2;
  CHECK(pick_token(logits, k2, 0.49) == 1);
  CHECK(pick_token(logits, k2, 0.51) == 2);
}

TEST_CASE("generation from a checkpoint follows the trained Markov source", "[generator]") {
  test::RecipeDir dir("generate");
  const int V = 16;
  {
    // A sparse order-1 chain (2 successors per token, skewed) that 300 steps learn well.
    Trainer t(dir.tiny_recipe({"model.vocab=16", "data.synth.vocab=16", "data.synth.branching=2",
                               "data.synth.concentration=0.3", "data.synth.train_tokens=50000", "model.d_model=32",
                               "train.steps=300", "train.micro_batch=8", "train.global_batch=8",
                               "optimizer.warmup_steps=10", "checkpoint.every=150"}),
              TrainerOptions{true, true, {}});
    t.run();
  }
  TrainedModel run = load_trained_model(dir.path() / "run", std::nullopt);
  CHECK(run.step == 300);
  CHECK(run.warnings.empty());
  const Tokenizer tok = Tokenizer::for_dataset(dir.path() / "data" / "train.bin", V);
  CHECK(tok.kind() == Tokenizer::Kind::token_ids);
  Generator gen(*run.backend, *run.model);

  // The source's transition counts, from the training data itself.
  const data::TokenShard train(dir.path() / "data" / "train.bin");
  std::vector<std::array<double, V>> count(V);
  for (auto& c : count) c.fill(0);
  for (std::size_t i = 1; i < train.size(); ++i) count[train[i - 1]][train[i]] += 1;

  // Greedy, from a prompt taken from the validation data, past the context (seq_len 16).
  const data::TokenShard val(dir.path() / "data" / "val.bin");
  std::vector<std::int32_t> prompt(val.data(), val.data() + 10);
  SamplingOptions greedy;
  greedy.temperature = 0;
  const auto out = gen.generate(prompt, 40, greedy);
  REQUIRE(out.size() == 40);
  std::vector<std::int32_t> text = prompt;
  int clear = 0;  // states whose most likely successor stands out
  for (std::size_t i = 0; i < out.size(); ++i) {
    // Greedy is the argmax of the engine's logits for the text so far.
    const auto logits = gen.next_logits(text);
    REQUIRE(logits.size() == static_cast<std::size_t>(V));
    CHECK(out[i] == pick_token(logits, greedy, 0));
    const auto& c = count[static_cast<std::size_t>(text.back())];
    std::array<double, V> sorted = c;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    const double total = sorted[0] + sorted[1];
    if (total > 0 && (sorted[0] - sorted[1]) / total > 0.1) {
      ++clear;
      INFO("after token " << text.back() << " at position " << text.size());
      CHECK(c[static_cast<std::size_t>(out[i])] == sorted[0]);
    }
    text.push_back(out[i]);
  }
  CHECK(clear >= 20);

  // The window slides: only the last seq_len tokens count.
  const std::vector<std::int32_t> last16(text.end() - 16, text.end());
  CHECK(gen.next_logits(text) == gen.next_logits(last16));

  // Deterministic for a seed, at temperature 1.
  SamplingOptions s7;
  s7.seed = 7;
  const auto a = gen.generate(prompt, 50, s7);
  CHECK(a == gen.generate(prompt, 50, s7));
  SamplingOptions s8;
  s8.seed = 8;
  CHECK(a != gen.generate(prompt, 50, s8));

  // An older checkpoint by step.
  TrainedModel older = load_trained_model(dir.path() / "run", 150);
  CHECK(older.step == 150);
  CHECK_THROWS_WITH(load_trained_model(dir.path() / "run", 7),
                    Catch::Contains("no checkpoint of step 7") && Catch::Contains("steps saved: 150, 300"));
}

TEST_CASE("the tokenizers encode what they can and refuse the rest", "[generator]") {
  const Tokenizer bytes(Tokenizer::Kind::bytes, "bytes", 128);
  CHECK(bytes.encode("hi!") == std::vector<std::int32_t>{'h', 'i', '!'});
  CHECK(bytes.decode({'o', 'k'}) == "ok");
  CHECK_THROWS_WITH(bytes.encode("h\xc3\xa9"), Catch::Contains("byte 0xc3 at offset 1") &&
                                                   Catch::Contains("vocabulary of 128 tokens"));
  CHECK_THROWS_WITH(bytes.encode(""), Catch::Contains("the prompt is empty"));
  const Tokenizer ids(Tokenizer::Kind::token_ids, "synthetic-markov", 16);
  CHECK(ids.encode(" 3 14  15 ") == std::vector<std::int32_t>{3, 14, 15});
  CHECK(ids.decode({3, 14}) == "3 14");
  CHECK_THROWS_WITH(ids.encode("3 16"), Catch::Contains("'16' is not a token") && Catch::Contains("0..15"));
  CHECK_THROWS_WITH(ids.encode("hello"), Catch::Contains("'hello' is not a token"));
}

TEST_CASE("sampling refuses what is not a trained run", "[generator]") {
  test::RecipeDir dir("generate-errors");
  CHECK_THROWS_WITH(load_trained_model(dir.path() / "nope", std::nullopt), Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(load_trained_model(dir.path(), std::nullopt), Catch::Contains("recipe.yaml does not exist"));
  {
    Trainer t(dir.tiny_recipe({"train.steps=2"}), TrainerOptions{true, true, {}});
    t.run();  // checkpoint.every 0: no checkpoint
  }
  CHECK_THROWS_WITH(load_trained_model(dir.path() / "run", std::nullopt),
                    Catch::Contains("no checkpoint folder") && Catch::Contains("checkpoint.every"));
  CHECK_THROWS_WITH(Tokenizer::for_dataset(dir.path() / "elsewhere" / "train.bin", 32),
                    Catch::Contains("cannot tell the run's tokenizer"));
}
