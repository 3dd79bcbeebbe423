// The cuda backend op by op against the cpu backend: fresh random inputs, outputs poisoned
// with NaN (accumulated outputs start from the same random values on both), relative error
// <= 1e-5, and two gpu runs bitwise equal. Without a CUDA device every case WARNs and passes.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <limits>

#include "cuda_test_helpers.hpp"
#include "trainer/bf16.hpp"
#include "trainer/rng.hpp"

using namespace cuda_test;
using trainer::Backend;
using trainer::DType;
using trainer::RngKey;
using trainer::Tensor;

namespace {

std::vector<std::int32_t> random_ids(std::size_t n, int bound, std::mt19937& rng) {
  std::vector<std::int32_t> v(n);
  for (auto& x : v) x = static_cast<std::int32_t>(rng() % static_cast<unsigned>(bound));
  return v;
}

}  // namespace

TEST_CASE("cuda matmul_forward and matmul_backward match the cpu", "[cuda][matmul]") {
  struct Case { int N, C, OC; bool bias, dinp; };
  const auto c = GENERATE(Case{201, 96, 288, true, true}, Case{512, 768, 3072, true, true},
                          Case{64, 130, 70, false, false}, Case{33, 64, 50, true, false});
  INFO("N " << c.N << " C " << c.C << " OC " << c.OC);
  std::mt19937 rng(1);
  const auto x = random_vector(static_cast<std::size_t>(c.N) * c.C, rng);
  const auto w = random_vector(static_cast<std::size_t>(c.OC) * c.C, rng);
  const auto b = random_vector(c.OC, rng);
  const auto g = random_vector(static_cast<std::size_t>(c.N) * c.OC, rng);
  const auto dw0 = random_vector(w.size(), rng), db0 = random_vector(b.size(), rng);
  compare("matmul_forward", [&](Backend& be) -> Outputs {
    Tensor out = nans(be, {c.N, c.OC});
    be.matmul_forward(out, put(be, x, {c.N, c.C}), put(be, w, {c.OC, c.C}), c.bias ? put(be, b, {c.OC}) : Tensor(),
                      c.N, c.C, c.OC);
    return {{"out", get(be, out)}};
  });
  compare("matmul_backward", [&](Backend& be) -> Outputs {
    Tensor dinp = c.dinp ? nans(be, {c.N, c.C}) : Tensor();
    Tensor dw = put(be, dw0, {c.OC, c.C});
    Tensor db = c.bias ? put(be, db0, {c.OC}) : Tensor();
    be.matmul_backward(dinp, dw, db, put(be, g, {c.N, c.OC}), put(be, x, {c.N, c.C}), put(be, w, {c.OC, c.C}), c.N,
                       c.C, c.OC);
    Outputs o{{"dweight", get(be, dw)}};
    if (c.dinp) o.push_back({"dinp", get(be, dinp)});
    if (c.bias) o.push_back({"dbias", get(be, db)});
    return o;
  });
}

// Attention (fused, f32 and bf16): cuda_flash_attention_test.cpp.

TEST_CASE("cuda layernorm forward and backward match the cpu", "[cuda][layernorm]") {
  struct Case { int N, C; };
  const auto c = GENERATE(Case{201, 96}, Case{300, 768}, Case{5, 33});
  INFO("N " << c.N << " C " << c.C);
  std::mt19937 rng(3);
  const std::size_t NC = static_cast<std::size_t>(c.N) * c.C;
  const auto x = random_vector(NC, rng, -3.0f, 3.0f), w = random_vector(c.C, rng), b = random_vector(c.C, rng);
  const auto g = random_vector(NC, rng), di0 = random_vector(NC, rng);
  const auto dw0 = random_vector(c.C, rng), db0 = random_vector(c.C, rng);
  auto forward = [&](Backend& be, Tensor& out, Tensor& mean, Tensor& rstd, Tensor& inp) {
    out = nans(be, {c.N, c.C});
    mean = nans(be, {c.N});
    rstd = nans(be, {c.N});
    inp = put(be, x, {c.N, c.C});
    be.layernorm_forward(out, mean, rstd, inp, put(be, w, {c.C}), put(be, b, {c.C}), c.N, c.C);
  };
  compare("layernorm_forward", [&](Backend& be) -> Outputs {
    Tensor out, mean, rstd, inp;
    forward(be, out, mean, rstd, inp);
    return {{"out", get(be, out)}, {"mean", get(be, mean)}, {"rstd", get(be, rstd)}};
  });
  compare("layernorm_backward", [&](Backend& be) -> Outputs {
    Tensor out, mean, rstd, inp;
    forward(be, out, mean, rstd, inp);
    Tensor di = put(be, di0, {c.N, c.C}), dw = put(be, dw0, {c.C}), db = put(be, db0, {c.C});
    be.layernorm_backward(di, dw, db, put(be, g, {c.N, c.C}), inp, put(be, w, {c.C}), mean, rstd, c.N, c.C);
    return {{"dinp", get(be, di)}, {"dweight", get(be, dw)}, {"dbias", get(be, db)}};
  });
}

TEST_CASE("cuda embedding forward and backward match the cpu", "[cuda][embedding]") {
  struct Case { int B, T, C, V; };
  // A small vocabulary makes tokens collide, the case a deterministic backward must handle.
  const auto c = GENERATE(Case{4, 33, 80, 17}, Case{8, 64, 96, 1000}, Case{2, 5, 7, 1});
  INFO("B " << c.B << " T " << c.T << " C " << c.C << " V " << c.V);
  std::mt19937 rng(4);
  const std::size_t BT = static_cast<std::size_t>(c.B) * c.T;
  const auto tok = random_ids(BT, c.V, rng);
  const auto wte = random_vector(static_cast<std::size_t>(c.V) * c.C, rng);
  const auto wpe = random_vector(static_cast<std::size_t>(c.T + 3) * c.C, rng);  // more rows than T
  const auto g = random_vector(BT * c.C, rng);
  compare("embedding_forward", [&](Backend& be) -> Outputs {
    Tensor out = nans(be, {c.B, c.T, c.C});
    be.embedding_forward(out, put_i32(be, tok, {c.B, c.T}), put(be, wte, {c.V, c.C}), put(be, wpe, {c.T + 3, c.C}),
                         c.B, c.T, c.C);
    return {{"out", get(be, out)}};
  });
  compare("embedding_backward", [&](Backend& be) -> Outputs {
    Tensor dwte = put(be, wte, {c.V, c.C}), dwpe = put(be, wpe, {c.T + 3, c.C});  // accumulate into values
    be.embedding_backward(dwte, dwpe, put(be, g, {c.B, c.T, c.C}), put_i32(be, tok, {c.B, c.T}), c.B, c.T, c.C);
    return {{"dwte", get(be, dwte)}, {"dwpe", get(be, dwpe)}};
  });
}

TEST_CASE("cuda crossentropy matches the cpu, ignored targets and aliasing included", "[cuda][crossentropy]") {
  struct Case { int N, V; bool grad, alias; };
  const auto c = GENERATE(Case{64, 50257, true, false}, Case{37, 1000, true, true}, Case{16, 300, false, false});
  INFO("N " << c.N << " V " << c.V << " grad " << c.grad << " alias " << c.alias);
  std::mt19937 rng(5);
  const auto logits = random_vector(static_cast<std::size_t>(c.N) * c.V, rng, -4.0f, 4.0f);
  auto targets = random_ids(c.N, c.V, rng);
  targets[1] = -1;  // ignored row
  compare("crossentropy_forward_backward", [&](Backend& be) -> Outputs {
    Tensor losses = nans(be, {c.N});
    Tensor lg = put(be, logits, {c.N, c.V});
    Tensor d = !c.grad ? Tensor() : c.alias ? lg : nans(be, {c.N, c.V});
    be.crossentropy_forward_backward(losses, d, lg, put_i32(be, targets, {c.N}), 1.0f / 64.0f, c.N, c.V);
    Outputs o{{"losses", get(be, losses)}};
    if (c.grad) o.push_back({"dlogits", get(be, d)});
    return o;
  });
}

TEST_CASE("cuda gelu and residual match the cpu", "[cuda][gelu][residual]") {
  std::mt19937 rng(6);
  const int N = 100003;
  const auto x = random_vector(N, rng, -5.0f, 5.0f), y = random_vector(N, rng);
  compare("gelu_forward", [&](Backend& be) -> Outputs {
    Tensor out = nans(be, {N});
    be.gelu_forward(out, put(be, x, {N}), N);
    return {{"out", get(be, out)}};
  });
  compare("gelu_backward", [&](Backend& be) -> Outputs {
    Tensor d = nans(be, {N});
    be.gelu_backward(d, put(be, x, {N}), put(be, y, {N}), N);
    return {{"dinp", get(be, d)}};
  });
  compare("residual_forward", [&](Backend& be) -> Outputs {
    Tensor out = nans(be, {N});
    be.residual_forward(out, put(be, x, {N}), put(be, y, {N}), N);
    return {{"out", get(be, out)}};
  });
}

TEST_CASE("cuda f32 matmul with GELU (the Backend default composition) matches the cpu", "[cuda][matmul][gelu]") {
  std::mt19937 rng(8);
  const int N = 67, C = 40, H = 160;
  const auto x = random_vector(static_cast<std::size_t>(N) * C, rng), w = random_vector(static_cast<std::size_t>(H) * C, rng);
  const auto b = random_vector(H, rng), pre = random_vector(static_cast<std::size_t>(N) * H, rng, -4.0f, 4.0f);
  const auto act = random_vector(pre.size(), rng), dout = random_vector(x.size(), rng);
  const auto dw0 = random_vector(w.size(), rng), db0 = random_vector(C, rng);
  compare("matmul_gelu_forward", [&](Backend& be) -> Outputs {
    Tensor o = nans(be, {N, H}), p = nans(be, {N, H});
    be.matmul_gelu_forward(o, p, put(be, x, {N, C}), put(be, w, {H, C}), put(be, b, {H}), N, C, H);
    return {{"out", get(be, o)}, {"pre", get(be, p)}};
  });
  compare("matmul_gelu_backward", [&](Backend& be) -> Outputs {
    Tensor dpre = nans(be, {N, H}), dw = put(be, dw0, {C, H}), db = put(be, db0, {C});
    be.matmul_gelu_backward(dpre, dw, db, put(be, dout, {N, C}), put(be, act, {N, H}), put(be, pre, {N, H}),
                            put(be, w, {C, H}), N, H, C);
    return {{"dpre", get(be, dpre)}, {"dweight", get(be, dw)}, {"dbias", get(be, db)}};
  });
}

TEST_CASE("cuda dropout masks equal the cpu's bit for bit, in place too", "[cuda][dropout]") {
  std::mt19937 rng(7);
  const int N = (1 << 20) + 5;
  const auto x = random_vector(N, rng, 0.5f, 1.5f);
  const RngKey key{1234, trainer::rng_stream(7, 1, 3)};
  for (const float p : {0.0f, 0.1f, 0.5f}) {
    INFO("p " << p);
    compare("dropout_forward", [&](Backend& be) -> Outputs {
      Tensor out = nans(be, {N}), inplace = put(be, x, {N});
      be.dropout_forward(out, put(be, x, {N}), p, key, N);
      be.dropout_forward(inplace, inplace, p, key, N);
      return {{"out", get(be, out)}, {"in place", get(be, inplace)}};
    }, 0.0);
    compare("dropout_backward", [&](Backend& be) -> Outputs {
      Tensor d = put(be, x, {N});
      be.dropout_backward(d, d, p, key, N);
      return {{"dinp", get(be, d)}};
    }, 0.0);
    if (Backend* g = gpu()) {
      Tensor out = nans(*g, {N});
      g->dropout_forward(out, put(*g, x, {N}), p, key, N);
      Tensor ref = nans(cpu(), {N});
      cpu().dropout_forward(ref, put(cpu(), x, {N}), p, key, N);
      CHECK(bitwise_equal(get(*g, out), get(cpu(), ref)));
    }
  }
}

TEST_CASE("cuda axpby, sum_squares, adamw, copy and fill_zero match the cpu", "[cuda][axpby][adamw]") {
  std::mt19937 rng(8);
  const int N = 1000003;
  const auto x = random_vector(N, rng), y = random_vector(N, rng);
  compare("axpby", [&](Backend& be) -> Outputs {
    Tensor yt = put(be, y, {N});
    be.axpby(yt, 0.5f, put(be, x, {N}), -2.0f, N);
    Tensor poisoned = nans(be, {N});  // b == 0 must not read y
    be.axpby(poisoned, 2.0f, put(be, x, {N}), 0.0f, N);
    return {{"y", get(be, yt)}, {"b = 0", get(be, poisoned)}};
  });
  compare("sum_squares", [&](Backend& be) -> Outputs {
    const double s = be.sum_squares(put(be, x, {N}), N);
    const double small = be.sum_squares(put(be, x, {N}).view(0, {7}), 7);  // a view
    return {{"sum", {static_cast<float>(s), static_cast<float>(small)}}};
  });
  if (Backend* g = gpu()) {
    const double want = cpu().sum_squares(put(cpu(), x, {N}), N);
    const double got = g->sum_squares(put(*g, x, {N}), N);
    record("sum_squares (double)", std::fabs(got - want) / want, got == want);
    CHECK(std::fabs(got - want) <= 1e-12 * want);
  }
  const auto grad = random_vector(N, rng), m0 = random_vector(N, rng, -0.1f, 0.1f);
  const auto v0 = random_vector(N, rng, 0.0f, 0.01f);
  compare("adamw_update", [&](Backend& be) -> Outputs {
    Tensor p = put(be, x, {N}), m = put(be, m0, {N}), v = put(be, v0, {N});
    be.adamw_update(p, put(be, grad, {N}), m, v, N, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 7);
    return {{"param", get(be, p)}, {"m", get(be, m)}, {"v", get(be, v)}};
  });
  compare("copy and fill_zero", [&](Backend& be) -> Outputs {
    Tensor a = nans(be, {N}), z = nans(be, {N});
    Tensor src = put(be, x, {N});
    be.copy(a, src);
    be.copy(src.view(0, {N - 10}), src.view(10, {N - 10}));  // overlapping
    be.fill_zero(z);
    return {{"copy", get(be, a)}, {"overlap", get(be, src)}, {"zero", get(be, z)}};
  });
}

// The multi-tensor AdamW (one launch, tensors cut into 32768-element chunks) against the cpu's
// one-tensor updates: sizes below, at and across chunk boundaries, views into one buffer, two
// weight decays; three steps, the second reusing the uploaded chunk table, the third with the
// tensors in another order (a new table); and bitwise equal to the gpu's one-tensor kernel.
TEST_CASE("cuda adamw_update_many matches the cpu and the one-tensor update", "[cuda][adamw]") {
  std::mt19937 rng(9);
  const std::vector<std::int64_t> sizes{1, 768, 32768, 32769, 100003, 3 * 32768 + 5};
  std::int64_t total = 0;
  for (auto n : sizes) total += n;
  const auto x = random_vector(static_cast<std::size_t>(total), rng), grad = random_vector(x.size(), rng);
  const auto m0 = random_vector(x.size(), rng, -0.1f, 0.1f), v0 = random_vector(x.size(), rng, 0.0f, 0.01f);
  const auto run = [&](Backend& be, bool many) -> Outputs {
    Tensor p = put(be, x, {total}), g = put(be, grad, {total}), m = put(be, m0, {total}), v = put(be, v0, {total});
    std::vector<trainer::AdamWTensors> ts;
    std::int64_t at = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const trainer::Shape s{sizes[i]};
      ts.push_back({p.view(at, s), g.view(at, s), m.view(at, s), v.view(at, s), i % 2 ? 0.1f : 0.0f, Tensor()});
      at += sizes[i];
    }
    for (std::int64_t t = 1; t <= 3; ++t) {
      if (t == 3) std::reverse(ts.begin(), ts.end());
      if (many) {
        be.adamw_update_many(ts, 3e-4f, 0.9f, 0.95f, 1e-8f, t);
      } else {
        for (const auto& e : ts) be.adamw_update(e.param, e.grad, e.m, e.v, e.param.numel(), 3e-4f, 0.9f, 0.95f,
                                                 1e-8f, e.weight_decay, t);
      }
    }
    return {{"param", get(be, p)}, {"m", get(be, m)}, {"v", get(be, v)}};
  };
  compare("adamw_update_many", [&](Backend& be) { return run(be, true); });
  Backend* g = gpu();
  if (!g) return;
  const Outputs many = run(*g, true), one = run(*g, false);
  for (std::size_t i = 0; i < many.size(); ++i) {
    INFO(many[i].first << ": the many-tensor update differs from the one-tensor kernel");
    CHECK(bitwise_equal(many[i].second, one[i].second));
  }
}

// With a bf16 compute copy per tensor, the update also writes the new values rounded to bf16:
// bitwise what convert() makes of the updated f32 values, on the gpu and on the cpu (the
// SDK's default), and the f32 results are those of the update without copies.
TEST_CASE("cuda adamw_update_many writes the bf16 compute copies it is given", "[cuda][adamw][bf16]") {
  std::mt19937 rng(10);
  const std::vector<std::int64_t> sizes{5, 32768, 40000};
  std::int64_t total = 0;
  for (auto n : sizes) total += n;
  const auto x = random_vector(static_cast<std::size_t>(total), rng), grad = random_vector(x.size(), rng);
  const auto run = [&](Backend& be, bool copies) {
    Tensor p = put(be, x, {total}), g = put(be, grad, {total}), m = put(be, std::vector<float>(x.size(), 0.0f), {total}),
           v = put(be, std::vector<float>(x.size(), 0.0f), {total});
    Tensor half = be.allocate({total}, DType::bf16);
    std::vector<std::uint16_t> poison(x.size(), 0x7fc0);  // NaN
    be.copy_from_host(half, poison.data());
    std::vector<trainer::AdamWTensors> ts;
    std::int64_t at = 0;
    for (auto n : sizes) {
      const trainer::Shape s{n};
      ts.push_back({p.view(at, s), g.view(at, s), m.view(at, s), v.view(at, s), 0.1f,
                    copies ? half.view(at, s) : Tensor()});
      at += n;
    }
    for (std::int64_t t = 1; t <= 2; ++t) be.adamw_update_many(ts, 1e-3f, 0.9f, 0.95f, 1e-8f, t);
    std::vector<std::uint16_t> bits(x.size());
    be.copy_to_host(bits.data(), half);
    return std::make_pair(get(be, p), bits);
  };
  const auto check = [&](Backend& be) {
    const auto [with, bits] = run(be, true);
    const auto [without, unused] = run(be, false);
    CHECK(bitwise_equal(with, without));
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < with.size(); ++i) mismatches += bits[i] != trainer::f32_to_bf16(with[i]) ? 1 : 0;
    CHECK(mismatches == 0);
  };
  SECTION("cpu (the SDK's default)") { check(cpu()); }
  SECTION("cuda") {
    Backend* g = gpu();
    if (!g) return;
    check(*g);
  }
}

TEST_CASE("cuda backend checks its arguments like the cpu backend", "[cuda][checks]") {
  Backend* g = gpu();
  if (!g) return;
  Tensor host = cpu().allocate({4, 4}, trainer::DType::f32);
  Tensor dev = g->allocate({4, 4}, trainer::DType::f32);
  CHECK_THROWS_WITH(g->matmul_forward(dev, host, dev, Tensor(), 4, 4, 4),
                    Catch::Matchers::Contains("cuda backend: matmul_forward: inp is not in device"));
  CHECK_THROWS_WITH(g->gelu_forward(dev, g->allocate({15}, trainer::DType::f32), 16),
                    Catch::Matchers::Contains("gelu_forward"));
  CHECK_THROWS_WITH(g->dropout_forward(dev, dev, 1.0f, RngKey{}, 16), Catch::Matchers::Contains("dropout_forward"));
  // Bad ids live on the device: they are reported at the next synchronisation.
  Tensor tok = put_i32(*g, {0, 5}, {1, 2});
  Tensor out = g->allocate({1, 2, 4}, trainer::DType::f32);
  g->embedding_forward(out, tok, g->allocate({3, 4}, trainer::DType::f32), g->allocate({2, 4}, trainer::DType::f32), 1,
                       2, 4);
  CHECK_THROWS_WITH(g->synchronize(), Catch::Matchers::Contains("embedding_forward: a token was outside"));
  g->synchronize();  // the error is reported once
}

// Tensor parallel's loss: the vocabulary cut in `shards` column blocks, each block's stats,
// then each block's finish from the gathered stats (as the tp ranks do), against the cpu.
TEST_CASE("cuda vocabulary-parallel crossentropy matches the cpu", "[cuda][crossentropy][tp]") {
  struct Case { int N, V, shards; bool alias; };
  const auto c = GENERATE(Case{37, 1000, 2, false}, Case{16, 50304, 4, true}, Case{5, 300, 1, false});
  INFO("N " << c.N << " V " << c.V << " shards " << c.shards);
  std::mt19937 rng(17);
  const int Vl = c.V / c.shards;
  std::vector<std::vector<float>> blocks;
  for (int r = 0; r < c.shards; ++r) blocks.push_back(random_vector(static_cast<std::size_t>(c.N) * Vl, rng, -4, 4));
  auto targets = random_ids(c.N, c.V, rng);
  targets[1] = -1;
  compare("crossentropy_shard_stats/finish", [&](Backend& be) -> Outputs {
    Tensor tg = put_i32(be, targets, {c.N});
    Tensor all = nans(be, {c.shards, c.N, 3});
    Outputs o;
    for (int r = 0; r < c.shards; ++r) {
      Tensor stats = all.view(static_cast<std::int64_t>(r) * c.N * 3, {c.N, 3});
      be.crossentropy_shard_stats(stats, put(be, blocks[r], {c.N, Vl}), tg, r * Vl, c.N, Vl);
    }
    o.push_back({"stats", get(be, all)});
    for (int r = 0; r < c.shards; ++r) {
      Tensor losses = nans(be, {c.N});
      Tensor lg = put(be, blocks[r], {c.N, Vl});
      Tensor d = c.alias ? lg : nans(be, {c.N, Vl});
      be.crossentropy_shard_finish(losses, d, lg, tg, all, c.shards, r * Vl, 1.0f / 64.0f, c.N, Vl);
      o.push_back({"losses " + std::to_string(r), get(be, losses)});
      o.push_back({"dlogits " + std::to_string(r), get(be, d)});
    }
    return o;
  });
}
