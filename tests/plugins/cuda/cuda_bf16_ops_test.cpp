// The cuda backend's bf16 (mixed-precision) ops against the cpu backend's f32 ops: fresh
// random inputs rounded to bf16, so both backends see the same values; the cpu computes in
// f32 on them, the gpu takes bf16 tensors. bf16 outputs within 1e-2 relative, f32 outputs
// (parameter gradients, statistics, losses) within 1e-5; NaN never passes; outputs poisoned
// with NaN first; two gpu runs bitwise equal. Without a CUDA device every case WARNs and passes.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "cuda_test_helpers.hpp"
#include "trainer/bf16.hpp"
#include "trainer/rng.hpp"

using namespace cuda_test;
using trainer::Backend;
using trainer::DType;
using trainer::RngKey;
using trainer::Shape;
using trainer::Tensor;

namespace {

constexpr double kBf16Tol = 1e-2;
constexpr double kF32Tol = 1e-5;

std::vector<float> rounded(std::vector<float> v) {
  for (auto& x : v) x = trainer::round_to_bf16(x);
  return v;
}

// A tensor of `host` values (already bf16-representable): bf16 on the gpu run, f32 on the cpu.
Tensor in(Backend& be, bool bf16, const std::vector<float>& host, const Shape& shape) {
  if (!bf16) return put(be, host, shape);
  std::vector<std::uint16_t> bits(host.size());
  for (std::size_t i = 0; i < host.size(); ++i) bits[i] = trainer::f32_to_bf16(host[i]);
  Tensor t = be.allocate(shape, DType::bf16);
  REQUIRE(static_cast<std::size_t>(t.numel()) == host.size());
  be.copy_from_host(t, bits.data());
  return t;
}

Tensor poisoned(Backend& be, bool bf16, const Shape& shape) {
  const auto n = static_cast<std::size_t>(trainer::shape_numel(shape));
  return in(be, bf16, std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()), shape);
}

struct Out {
  std::string name;
  std::vector<float> values;
  bool bf16 = false;
};
using Outs = std::vector<Out>;

Out out(Backend& be, const std::string& name, const Tensor& t) {
  Out o{name, std::vector<float>(static_cast<std::size_t>(t.numel())), t.dtype() == DType::bf16};
  if (o.bf16) {
    std::vector<std::uint16_t> bits(o.values.size());
    be.copy_to_host(bits.data(), t);
    for (std::size_t i = 0; i < bits.size(); ++i) o.values[i] = trainer::bf16_to_f32(bits[i]);
  } else {
    be.copy_to_host(o.values.data(), t);
  }
  return o;
}

using BfRun = std::function<Outs(Backend&, bool)>;

void compare_bf16(const std::string& op, const BfRun& run) {
  Backend* g = gpu();
  if (!g) return;
  const Outs want = run(cpu(), false);
  const Outs got = run(*g, true);
  const Outs again = run(*g, true);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double tol = got[i].bf16 ? kBf16Tol : kF32Tol;
    const double err = relative_error(got[i].values, want[i].values);
    record(op + " (bf16)", err, bitwise_equal(got[i].values, want[i].values));
    INFO(op << " bf16: " << want[i].name << (got[i].bf16 ? " (bf16)" : " (f32)") << ": relative error " << err
            << " (tolerance " << tol << ")");
    CHECK(err <= tol);
    INFO(op << " bf16: " << want[i].name << ": two gpu runs differ");
    CHECK(bitwise_equal(got[i].values, again[i].values));
  }
}

std::vector<std::int32_t> random_ids(std::size_t n, int bound, std::mt19937& rng) {
  std::vector<std::int32_t> v(n);
  for (auto& x : v) x = static_cast<std::int32_t>(rng() % static_cast<unsigned>(bound));
  return v;
}

}  // namespace

TEST_CASE("cuda convert rounds f32 to bf16 to nearest even, as the host", "[cuda][bf16][convert]") {
  Backend* g = gpu();
  if (!g) return;
  std::mt19937 rng(21);
  auto x = random_vector(100003, rng, -100.0f, 100.0f);
  x[0] = std::numeric_limits<float>::infinity();
  x[1] = -std::numeric_limits<float>::infinity();
  x[2] = std::numeric_limits<float>::quiet_NaN();
  x[3] = 1.0f + 1.0f / 256.0f;  // a tie: rounds to even (1.0)
  x[4] = 1.0f + 3.0f / 256.0f;  // a tie: rounds to even (1 + 4/256)
  x[5] = 1e-40f;                // subnormal
  Tensor src = put(*g, x, {100003});
  Tensor half = g->allocate({100003}, DType::bf16);
  g->convert(half, src);
  std::vector<std::uint16_t> bits(x.size());
  g->copy_to_host(bits.data(), half);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto want = trainer::f32_to_bf16(x[i]);
    if (std::isnan(x[i]) ? !std::isnan(trainer::bf16_to_f32(bits[i])) : bits[i] != want) ++mismatches;
  }
  CHECK(mismatches == 0);
  CHECK(trainer::bf16_to_f32(bits[3]) == 1.0f);
  Tensor back = nans(*g, {100003});
  g->convert(back, half);
  const auto b = get(*g, back);
  for (std::size_t i = 6; i < x.size(); i += 997) CHECK(b[i] == trainer::round_to_bf16(x[i]));
}

TEST_CASE("cuda bf16 matmul (cuBLASLt) matches the cpu", "[cuda][bf16][matmul]") {
  struct Case { int N, C, OC; bool bias, dinp; };
  const auto c = GENERATE(Case{201, 96, 288, true, true}, Case{512, 768, 3072, true, true},
                          Case{64, 130, 70, false, false}, Case{33, 64, 50, true, false},
                          Case{1024, 768, 50304, false, true});
  INFO("N " << c.N << " C " << c.C << " OC " << c.OC);
  std::mt19937 rng(11);
  const auto x = rounded(random_vector(static_cast<std::size_t>(c.N) * c.C, rng));
  const auto w = rounded(random_vector(static_cast<std::size_t>(c.OC) * c.C, rng));
  const auto b = rounded(random_vector(c.OC, rng));
  const auto g = rounded(random_vector(static_cast<std::size_t>(c.N) * c.OC, rng));
  const auto dw0 = random_vector(w.size(), rng), db0 = random_vector(b.size(), rng);
  compare_bf16("matmul_forward", [&](Backend& be, bool bf) -> Outs {
    Tensor o = poisoned(be, bf, {c.N, c.OC});
    be.matmul_forward(o, in(be, bf, x, {c.N, c.C}), in(be, bf, w, {c.OC, c.C}),
                      c.bias ? in(be, bf, b, {c.OC}) : Tensor(), c.N, c.C, c.OC);
    return {out(be, "out", o)};
  });
  if (!c.bias) {  // bf16 operands, f32 output (logits read on the host)
    compare_bf16("matmul_forward f32 out", [&](Backend& be, bool bf) -> Outs {
      Tensor o = nans(be, {c.N, c.OC});
      be.matmul_forward(o, in(be, bf, x, {c.N, c.C}), in(be, bf, w, {c.OC, c.C}), Tensor(), c.N, c.C, c.OC);
      return {out(be, "out", o)};
    });
  }
  compare_bf16("matmul_backward", [&](Backend& be, bool bf) -> Outs {
    Tensor dinp = c.dinp ? poisoned(be, bf, {c.N, c.C}) : Tensor();
    Tensor dw = put(be, dw0, {c.OC, c.C});  // f32 gradients, accumulated
    Tensor db = c.bias ? put(be, db0, {c.OC}) : Tensor();
    be.matmul_backward(dinp, dw, db, in(be, bf, g, {c.N, c.OC}), in(be, bf, x, {c.N, c.C}),
                       in(be, bf, w, {c.OC, c.C}), c.N, c.C, c.OC);
    Outs o{out(be, "dweight", dw)};
    if (c.dinp) o.push_back(out(be, "dinp", dinp));
    if (c.bias) o.push_back(out(be, "dbias", db));
    return o;
  });
}

// A projection added to the residual stream in the product (cuBLASLt, the residual as C) against
// the cpu's matmul then residual add: with and without bias, an unaligned bias (the composed
// path), and out aliasing the residual (in place).
TEST_CASE("cuda bf16 matmul_residual_forward matches the cpu", "[cuda][bf16][matmul][residual]") {
  struct Case { int N, C, OC; bool bias, unaligned, in_place; };
  const auto c = GENERATE(Case{201, 96, 96, true, false, false}, Case{512, 3072, 768, true, false, false},
                          Case{64, 130, 72, false, false, false}, Case{33, 64, 48, true, true, false},
                          Case{128, 64, 64, true, false, true});
  INFO("N " << c.N << " C " << c.C << " OC " << c.OC << (c.unaligned ? " unaligned bias" : "")
            << (c.in_place ? " in place" : ""));
  std::mt19937 rng(23);
  const auto x = rounded(random_vector(static_cast<std::size_t>(c.N) * c.C, rng));
  const auto w = rounded(random_vector(static_cast<std::size_t>(c.OC) * c.C, rng));
  const auto b = rounded(random_vector(c.OC + 1, rng));
  const auto r = rounded(random_vector(static_cast<std::size_t>(c.N) * c.OC, rng, -4.0f, 4.0f));
  compare_bf16("matmul_residual_forward", [&](Backend& be, bool bf) -> Outs {
    Tensor res = in(be, bf, r, {c.N, c.OC});
    Tensor o = c.in_place ? res : poisoned(be, bf, {c.N, c.OC});
    Tensor bias = c.bias ? in(be, bf, b, {c.OC + 1}).view(c.unaligned ? 1 : 0, {c.OC}) : Tensor();
    be.matmul_residual_forward(o, in(be, bf, x, {c.N, c.C}), in(be, bf, w, {c.OC, c.C}), bias, res, c.N, c.C, c.OC);
    return {out(be, "out", o)};
  });
}

// An MLP's products with their GELU fused (cuBLASLt epilogues) against the cpu's separate ops:
// the up-projection x[N,C] -> pre, gelu [N,H]; the down-projection's backward from dout[N,C]
// through the GELU to dpre [N,H]. H a multiple of 8 takes the epilogues, 70 the separate path.
TEST_CASE("cuda bf16 matmul with fused GELU matches the cpu", "[cuda][bf16][matmul][gelu]") {
  struct Case { int N, C, H; bool bias; };
  const auto c = GENERATE(Case{201, 96, 384, true}, Case{512, 768, 3072, true}, Case{64, 50, 256, false},
                          Case{33, 64, 70, true});
  INFO("N " << c.N << " C " << c.C << " H " << c.H);
  std::mt19937 rng(23);
  const std::size_t NC = static_cast<std::size_t>(c.N) * c.C, NH = static_cast<std::size_t>(c.N) * c.H,
                    HC = static_cast<std::size_t>(c.H) * c.C;
  const auto x = rounded(random_vector(NC, rng)), w1 = rounded(random_vector(HC, rng, -0.1f, 0.1f));
  const auto b1 = rounded(random_vector(c.H, rng)), w2 = rounded(random_vector(HC, rng, -0.1f, 0.1f));
  const auto pre = rounded(random_vector(NH, rng, -4.0f, 4.0f)), act = rounded(random_vector(NH, rng));
  const auto dout = rounded(random_vector(NC, rng));
  const auto dw0 = random_vector(HC, rng), db0 = random_vector(c.C, rng);
  compare_bf16("matmul_gelu_forward", [&](Backend& be, bool bf) -> Outs {
    Tensor o = poisoned(be, bf, {c.N, c.H}), p = poisoned(be, bf, {c.N, c.H});
    be.matmul_gelu_forward(o, p, in(be, bf, x, {c.N, c.C}), in(be, bf, w1, {c.H, c.C}),
                           c.bias ? in(be, bf, b1, {c.H}) : Tensor(), c.N, c.C, c.H);
    return {out(be, "out", o), out(be, "pre", p)};
  });
  compare_bf16("matmul_gelu_backward", [&](Backend& be, bool bf) -> Outs {
    Tensor dpre = poisoned(be, bf, {c.N, c.H});
    Tensor dw = put(be, dw0, {c.C, c.H});  // f32 gradients, accumulated
    Tensor db = c.bias ? put(be, db0, {c.C}) : Tensor();
    be.matmul_gelu_backward(dpre, dw, db, in(be, bf, dout, {c.N, c.C}), in(be, bf, act, {c.N, c.H}),
                            in(be, bf, pre, {c.N, c.H}), in(be, bf, w2, {c.C, c.H}), c.N, c.H, c.C);
    Outs o{out(be, "dpre", dpre), out(be, "dweight", dw)};
    if (c.bias) o.push_back(out(be, "dbias", db));
    return o;
  });
}

TEST_CASE("cuda bf16 layernorm matches the cpu", "[cuda][bf16][layernorm]") {
  struct Case { int N, C; };
  // Fused backward path: C a multiple of 8 up to 1024 (96, 768, 1024; N not a multiple of the
  // 8 rows of a block; 9001 rows: the 264-block cap, several rows per warp); general path: 33, 1032.
  const auto c = GENERATE(Case{201, 96}, Case{300, 768}, Case{5, 33}, Case{9001, 768}, Case{1001, 1024},
                          Case{67, 1032});
  INFO("N " << c.N << " C " << c.C);
  std::mt19937 rng(13);
  const std::size_t NC = static_cast<std::size_t>(c.N) * c.C;
  const auto x = rounded(random_vector(NC, rng, -3.0f, 3.0f));
  const auto w = rounded(random_vector(c.C, rng)), b = rounded(random_vector(c.C, rng));
  const auto g = rounded(random_vector(NC, rng)), di0 = rounded(random_vector(NC, rng));
  const auto dw0 = random_vector(c.C, rng), db0 = random_vector(c.C, rng);
  compare_bf16("layernorm_forward", [&](Backend& be, bool bf) -> Outs {
    Tensor o = poisoned(be, bf, {c.N, c.C}), mean = nans(be, {c.N}), rstd = nans(be, {c.N});
    be.layernorm_forward(o, mean, rstd, in(be, bf, x, {c.N, c.C}), in(be, bf, w, {c.C}), in(be, bf, b, {c.C}), c.N,
                         c.C);
    return {out(be, "out", o), out(be, "mean", mean), out(be, "rstd", rstd)};
  });
  compare_bf16("layernorm_backward", [&](Backend& be, bool bf) -> Outs {
    // mean/rstd from the cpu's f32 forward on the same values, so backward is compared alone.
    Tensor ref_out = nans(cpu(), {c.N, c.C}), mean_c = nans(cpu(), {c.N}), rstd_c = nans(cpu(), {c.N});
    cpu().layernorm_forward(ref_out, mean_c, rstd_c, put(cpu(), x, {c.N, c.C}), put(cpu(), w, {c.C}),
                            put(cpu(), b, {c.C}), c.N, c.C);
    Tensor mean = put(be, get(cpu(), mean_c), {c.N}), rstd = put(be, get(cpu(), rstd_c), {c.N});
    Tensor di = in(be, bf, di0, {c.N, c.C}), dw = put(be, dw0, {c.C}), db = put(be, db0, {c.C});
    be.layernorm_backward(di, dw, db, in(be, bf, g, {c.N, c.C}), in(be, bf, x, {c.N, c.C}), in(be, bf, w, {c.C}),
                          mean, rstd, c.N, c.C);
    return {out(be, "dinp", di), out(be, "dweight", dw), out(be, "dbias", db)};
  });
}

TEST_CASE("cuda bf16 embedding matches the cpu", "[cuda][bf16][embedding]") {
  struct Case { int B, T, C, V; };
  const auto c = GENERATE(Case{4, 33, 80, 17}, Case{8, 64, 96, 1000});
  std::mt19937 rng(14);
  const std::size_t BT = static_cast<std::size_t>(c.B) * c.T;
  const auto tok = random_ids(BT, c.V, rng);
  const auto wte = rounded(random_vector(static_cast<std::size_t>(c.V) * c.C, rng));
  const auto wpe = rounded(random_vector(static_cast<std::size_t>(c.T) * c.C, rng));
  const auto g = rounded(random_vector(BT * c.C, rng));
  const auto dwte0 = random_vector(wte.size(), rng), dwpe0 = random_vector(wpe.size(), rng);
  compare_bf16("embedding_forward", [&](Backend& be, bool bf) -> Outs {
    Tensor o = poisoned(be, bf, {c.B, c.T, c.C});
    be.embedding_forward(o, put_i32(be, tok, {c.B, c.T}), in(be, bf, wte, {c.V, c.C}), in(be, bf, wpe, {c.T, c.C}),
                         c.B, c.T, c.C);
    return {out(be, "out", o)};
  });
  compare_bf16("embedding_backward", [&](Backend& be, bool bf) -> Outs {
    Tensor dwte = put(be, dwte0, {c.V, c.C}), dwpe = put(be, dwpe0, {c.T, c.C});
    be.embedding_backward(dwte, dwpe, in(be, bf, g, {c.B, c.T, c.C}), put_i32(be, tok, {c.B, c.T}), c.B, c.T, c.C);
    return {out(be, "dwte", dwte), out(be, "dwpe", dwpe)};
  });
}

TEST_CASE("cuda bf16 crossentropy matches the cpu, in place and ignored targets", "[cuda][bf16][crossentropy]") {
  struct Case { int N, V; bool grad, alias; };
  // Row in registers (V a multiple of 8 up to 65536): 50304, 1000; general path: 300, 1001,
  // 70000.
  const auto c = GENERATE(Case{64, 50304, true, true}, Case{37, 1000, true, false}, Case{16, 300, false, false},
                          Case{9, 1001, true, false}, Case{3, 70000, true, true}, Case{33, 50304, false, false});
  std::mt19937 rng(15);
  const auto logits = rounded(random_vector(static_cast<std::size_t>(c.N) * c.V, rng, -4.0f, 4.0f));
  auto targets = random_ids(c.N, c.V, rng);
  targets[1] = -1;
  compare_bf16("crossentropy_forward_backward", [&](Backend& be, bool bf) -> Outs {
    Tensor losses = nans(be, {c.N});
    Tensor lg = in(be, bf, logits, {c.N, c.V});
    Tensor d = !c.grad ? Tensor() : c.alias ? lg : poisoned(be, bf, {c.N, c.V});
    be.crossentropy_forward_backward(losses, d, lg, put_i32(be, targets, {c.N}), 1.0f / 64.0f, c.N, c.V);
    Outs o{out(be, "losses", losses)};
    if (c.grad) o.push_back(out(be, "dlogits", d));
    return o;
  });
}

TEST_CASE("cuda bf16 gelu, residual and dropout match the cpu", "[cuda][bf16][gelu]") {
  std::mt19937 rng(16);
  for (const int N : {100003, 4096 * 8}) {  // odd size (scalar path) and a multiple of 8 (packed)
    INFO("N " << N);
    const auto x = rounded(random_vector(N, rng, -5.0f, 5.0f)), y = rounded(random_vector(N, rng));
    compare_bf16("gelu_forward", [&](Backend& be, bool bf) -> Outs {
      Tensor o = poisoned(be, bf, {N});
      be.gelu_forward(o, in(be, bf, x, {N}), N);
      return {out(be, "out", o)};
    });
    compare_bf16("gelu_backward", [&](Backend& be, bool bf) -> Outs {
      Tensor d = poisoned(be, bf, {N});
      be.gelu_backward(d, in(be, bf, x, {N}), in(be, bf, y, {N}), N);
      return {out(be, "dinp", d)};
    });
    compare_bf16("residual_forward", [&](Backend& be, bool bf) -> Outs {
      Tensor o = poisoned(be, bf, {N});
      be.residual_forward(o, in(be, bf, x, {N}), in(be, bf, y, {N}), N);
      return {out(be, "out", o)};
    });
    const RngKey key{99, trainer::rng_stream(1, 2, 3)};
    compare_bf16("dropout_forward", [&](Backend& be, bool bf) -> Outs {
      Tensor o = poisoned(be, bf, {N}), inplace = in(be, bf, x, {N});
      be.dropout_forward(o, in(be, bf, x, {N}), 0.2f, key, N);
      be.dropout_backward(inplace, inplace, 0.2f, key, N);
      return {out(be, "out", o), out(be, "in place", inplace)};
    });
  }
}

TEST_CASE("cuda bf16 ops refuse mixed dtypes with a clear message", "[cuda][bf16][checks]") {
  Backend* g = gpu();
  if (!g) return;
  Tensor a = g->allocate({4, 4}, DType::bf16), f = g->allocate({4, 4}, DType::f32);
  CHECK_THROWS_WITH(g->matmul_forward(a, a, f, Tensor(), 4, 4, 4),
                    Catch::Matchers::Contains("matmul_forward: weight is f32, expected bf16"));
  CHECK_THROWS_WITH(g->residual_forward(a, a, f, 16), Catch::Matchers::Contains("residual_forward: b is f32"));
  CHECK_THROWS_WITH(g->convert(g->allocate({4}, DType::i32), f), Catch::Matchers::Contains("convert"));
}

TEST_CASE("cuda bf16 vocabulary-parallel crossentropy matches the cpu", "[cuda][bf16][crossentropy][tp]") {
  struct Case { int N, V, shards; bool alias; };
  const auto c = GENERATE(Case{37, 1000, 2, true}, Case{16, 50304, 2, false}, Case{8, 50304, 4, true});
  INFO("N " << c.N << " V " << c.V << " shards " << c.shards);
  std::mt19937 rng(18);
  const int Vl = c.V / c.shards;
  std::vector<std::vector<float>> blocks;
  for (int r = 0; r < c.shards; ++r) {
    blocks.push_back(rounded(random_vector(static_cast<std::size_t>(c.N) * Vl, rng, -4.0f, 4.0f)));
  }
  auto targets = random_ids(c.N, c.V, rng);
  targets[2] = -1;
  compare_bf16("crossentropy_shard_stats/finish", [&](Backend& be, bool bf) -> Outs {
    Tensor tg = put_i32(be, targets, {c.N});
    Tensor all = nans(be, {c.shards, c.N, 3});
    for (int r = 0; r < c.shards; ++r) {
      Tensor stats = all.view(static_cast<std::int64_t>(r) * c.N * 3, {c.N, 3});
      be.crossentropy_shard_stats(stats, in(be, bf, blocks[r], {c.N, Vl}), tg, r * Vl, c.N, Vl);
    }
    Outs o{out(be, "stats", all)};
    for (int r = 0; r < c.shards; ++r) {
      Tensor losses = nans(be, {c.N});
      Tensor lg = in(be, bf, blocks[r], {c.N, Vl});
      Tensor d = c.alias ? lg : poisoned(be, bf, {c.N, Vl});
      be.crossentropy_shard_finish(losses, d, lg, tg, all, c.shards, r * Vl, 1.0f / 64.0f, c.N, Vl);
      o.push_back(out(be, "losses " + std::to_string(r), losses));
      o.push_back(out(be, "dlogits " + std::to_string(r), d));
    }
    return o;
  });
}
