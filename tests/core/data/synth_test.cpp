// Synthetic Markov corpus: reproducible bit for bit, with an entropy floor that matches
// both theory (0 for deterministic chains, log b for uniform ones) and the sampled data.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <vector>

#include "data/dataset_json.hpp"
#include "data/markov_chain.hpp"
#include "data/portable_random.hpp"
#include "data/synth.hpp"
#include "data/token_shard.hpp"
#include "temp_dir.hpp"

using namespace trainer::data;
using trainer::data::test::read_file;
using trainer::data::test::TempDir;
using trainer::data::test::write_file;

namespace {

SynthSpec small_spec() {
  SynthSpec spec;
  spec.train_tokens = 20'000;
  spec.val_tokens = 5'000;
  return spec;
}

std::uint64_t fnv1a(const std::string& bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

}  // namespace

TEST_CASE("the same spec gives byte-identical files; another seed does not", "[data][synth]") {
  TempDir a("synth"), b("synth"), c("synth");
  const SynthSpec spec = small_spec();
  const SynthResult ra = synth_corpus(spec, a.path());
  const SynthResult rb = synth_corpus(spec, b.path());
  REQUIRE(read_file(ra.train) == read_file(rb.train));
  REQUIRE(read_file(ra.val) == read_file(rb.val));
  REQUIRE(read_file(ra.dataset_json) == read_file(rb.dataset_json));
  REQUIRE(ra.entropy_nats == rb.entropy_nats);

  SynthSpec other = spec;
  other.seed = spec.seed + 1;
  const SynthResult rc = synth_corpus(other, c.path());
  REQUIRE(read_file(rc.train) != read_file(ra.train));
  REQUIRE(read_file(rc.val) != read_file(ra.val));
  REQUIRE(rc.entropy_nats != ra.entropy_nats);
}

TEST_CASE("the corpus is pinned: golden values guard cross-platform identity", "[data][synth]") {
  // Everything derives from mt19937_64's output, which the standard fixes (its 10000th
  // value from the default seed is specified), so these values must hold on every
  // standard library. A change here changes every synthetic dataset.
  Engine engine;
  engine.discard(9999);
  REQUIRE(engine() == 9981545732273789042ull);

  TempDir dir("synth");
  const SynthResult r = synth_corpus(small_spec(), dir.path());
  INFO("train.bin fnv1a = " << fnv1a(read_file(r.train)) << ", floor = " << r.entropy_nats);
  CHECK(fnv1a(read_file(r.train)) == 2175470138373550332ull);
  CHECK(fnv1a(read_file(r.val)) == 5108419179566488721ull);
  CHECK(r.entropy_nats == Approx(1.0720815015645513).epsilon(1e-12));
}

TEST_CASE("train and val are independent continuations of one chain", "[data][synth]") {
  TempDir dir("synth");
  const SynthResult r = synth_corpus(small_spec(), dir.path());
  const TokenShard train(r.train);
  const TokenShard val(r.val);
  REQUIRE(train.size() == 20'000);
  REQUIRE(val.size() == 5'000);
  REQUIRE(train.max_token() < 64);
  REQUIRE(val.max_token() < 64);
  // Not a copy of each other: the first 100 tokens agree only by chance (~1/e each).
  int same = 0;
  for (std::size_t i = 0; i < 100; ++i) same += train[i] == val[i];
  REQUIRE(same < 60);
  // The chain is irreducible, so a long run visits every token.
  std::set<std::uint16_t> seen(train.data(), train.data() + train.size());
  REQUIRE(seen.size() == 64);
}

TEST_CASE("a deterministic chain (branching 1) has entropy floor 0", "[data][synth]") {
  for (const int order : {1, 2, 3}) {
    TempDir dir("synth");
    SynthSpec spec = small_spec();
    spec.vocab = 16;
    spec.order = order;
    spec.branching = 1;
    const SynthResult r = synth_corpus(spec, dir.path());
    INFO("order " << order);
    REQUIRE(r.entropy_nats == 0.0);
    REQUIRE(r.val_empirical_nats == 0.0);
  }
}

TEST_CASE("with near-uniform successors the floor approaches log(branching)", "[data][synth]") {
  for (const int order : {1, 2}) {
    for (const int branching : {2, 4, 8}) {
      TempDir dir("synth");
      SynthSpec spec = small_spec();
      spec.order = order;
      spec.branching = branching;
      spec.concentration = 1e6;
      const SynthResult r = synth_corpus(spec, dir.path());
      INFO("order " << order << " branching " << branching);
      REQUIRE(r.entropy_nats <= std::log(branching) + 1e-12);
      REQUIRE(r.entropy_nats == Approx(std::log(branching)).epsilon(1e-4));
    }
  }
}

TEST_CASE("the val cross-entropy under the true chain is within 2% of the floor", "[data][synth]") {
  for (const int order : {1, 2}) {
    TempDir dir("synth");
    SynthSpec spec;  // the defaults: 2M train, 200k val tokens
    spec.order = order;
    const auto t0 = std::chrono::steady_clock::now();
    const SynthResult r = synth_corpus(spec, dir.path());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    WARN("vocab 64, order " << order << ", branching 4: floor " << r.entropy_nats
                             << " nats, val empirical " << r.val_empirical_nats << " nats, "
                             << seconds << " s");
    REQUIRE(r.entropy_nats > 0.5);
    REQUIRE(r.entropy_nats < std::log(4.0));
    REQUIRE(std::abs(r.val_empirical_nats - r.entropy_nats) < 0.02 * r.entropy_nats);
  }
}

TEST_CASE("dataset.json records the spec and the floor, and read_entropy_floor reads it back",
          "[data][synth]") {
  TempDir dir("synth");
  SynthSpec spec = small_spec();
  spec.seed = 0xFFFF'FFFF'FFFF'FFF0ull;  // beyond double precision: must survive as text
  spec.concentration = 0.5;
  const SynthResult r = synth_corpus(spec, dir.path());
  REQUIRE(r.dataset_json == dir / "dataset.json");
  const auto json = read_flat_json(r.dataset_json);
  REQUIRE(json.at("tokenizer").text == "synthetic-markov");
  REQUIRE(json.at("vocab_size").as_number() == 64);
  REQUIRE(json.at("order").as_number() == 1);
  REQUIRE(json.at("branching").as_number() == 4);
  REQUIRE(json.at("seed").text == "18446744073709551600");
  REQUIRE(json.at("concentration").as_number() == 0.5);
  REQUIRE(json.at("val_empirical_nats").as_number() == r.val_empirical_nats);

  REQUIRE(read_entropy_floor(dir.path()) == r.entropy_nats);  // exact: shortest round-trip text
  REQUIRE(read_entropy_floor(r.dataset_json) == r.entropy_nats);
  REQUIRE_FALSE(read_entropy_floor(dir / "nowhere").has_value());

  write_file(dir / "text.json", R"({"tokenizer": "bytes", "vocab_size": 256})");
  REQUIRE_FALSE(read_entropy_floor(dir / "text.json").has_value());
  write_file(dir / "broken.json", R"({"entropy_floor_nats": )");
  REQUIRE_THROWS_WITH(read_entropy_floor(dir / "broken.json"), Catch::Contains("broken.json"));
}

TEST_CASE("specs beyond the limits are refused before any work", "[data][synth]") {
  TempDir dir("synth");
  auto refuses = [&](auto edit) {
    SynthSpec spec = small_spec();
    edit(spec);
    REQUIRE_THROWS_AS(synth_corpus(spec, dir.path()), std::invalid_argument);
  };
  refuses([](SynthSpec& s) { s.order = 4; });  // 64^4 = 2^24 states
  refuses([](SynthSpec& s) { s.branching = 65; });
  refuses([](SynthSpec& s) { s.branching = 0; });
  refuses([](SynthSpec& s) { s.vocab = 1; });
  refuses([](SynthSpec& s) { s.vocab = 70000; });
  refuses([](SynthSpec& s) { s.order = 0; });
  refuses([](SynthSpec& s) { s.concentration = 0.0; });
  refuses([](SynthSpec& s) { s.val_tokens = 0; });
  REQUIRE_THROWS_WITH(
      [&] { SynthSpec s = small_spec(); s.order = 4; synth_corpus(s, dir.path()); }(),
      Catch::Contains("exceeds the limit"));
  REQUIRE_FALSE(std::filesystem::exists(dir / "train.bin"));
}

TEST_CASE("the chain's stationary distribution is a fixed point and matches the data",
          "[data][synth]") {
  MarkovParams params;
  params.vocab = 8;
  params.order = 2;
  params.branching = 3;
  params.seed = 99;
  const MarkovChain chain(params);
  REQUIRE(chain.state_count() == 64);
  const std::vector<double> pi = chain.stationary();
  std::vector<double> next(pi.size(), 0.0);
  double total = 0.0;
  for (std::uint64_t s = 0; s < chain.state_count(); ++s) {
    total += pi[s];
    REQUIRE(pi[s] > 0.0);  // irreducible: every state recurs
    const auto succ = chain.successors(s);
    const auto p = chain.probabilities(s);
    REQUIRE(std::set<std::uint16_t>(succ.begin(), succ.end()).size() == 3);  // distinct
    for (std::size_t j = 0; j < succ.size(); ++j) next[chain.next_state(s, succ[j])] += pi[s] * p[j];
  }
  REQUIRE(total == Approx(1.0).margin(1e-12));
  for (std::size_t s = 0; s < pi.size(); ++s) REQUIRE(next[s] == Approx(pi[s]).margin(1e-12));

  // Long-run state frequencies of a sampled path agree with pi.
  Engine engine(7);
  std::vector<double> visits(pi.size(), 0.0);
  std::uint64_t state = 0;
  const int n = 400'000;
  for (int i = 0; i < n; ++i) {
    state = chain.next_state(state, chain.successors(state)[static_cast<std::size_t>(
                                        chain.pick(state, uniform01(engine)))]);
    visits[state] += 1.0 / n;
  }
  for (std::size_t s = 0; s < pi.size(); ++s) REQUIRE(visits[s] == Approx(pi[s]).margin(0.01));
}

TEST_CASE("the portable variates have the right moments", "[data][synth]") {
  Engine engine(2024);
  const int n = 200'000;
  for (const double shape : {0.3, 1.0, 4.5}) {
    double mean = 0.0, sq = 0.0;
    for (int i = 0; i < n; ++i) {
      const double g = std::exp(log_gamma_variate(engine, shape));
      mean += g / n;
      sq += g * g / n;
    }
    INFO("shape " << shape);
    REQUIRE(mean == Approx(shape).epsilon(0.02));               // E = k
    REQUIRE(sq - mean * mean == Approx(shape).epsilon(0.05));  // Var = k
  }
  double u_mean = 0.0, z_sq = 0.0;
  for (int i = 0; i < n; ++i) {
    const double u = uniform01(engine);
    REQUIRE((u >= 0.0 && u < 1.0));
    u_mean += u / n;
    const double z = standard_normal(engine);
    z_sq += z * z / n;
  }
  REQUIRE(u_mean == Approx(0.5).margin(0.005));
  REQUIRE(z_sq == Approx(1.0).epsilon(0.02));
  std::vector<double> p(5);
  symmetric_dirichlet(engine, 0.01, p);  // tiny concentration: still a distribution
  double sum = 0.0;
  for (const double x : p) sum += x;
  REQUIRE(sum == Approx(1.0).margin(1e-12));
}
