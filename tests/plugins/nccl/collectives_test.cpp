// The nccl comm plugin's collectives on two GPUs, ranks as threads of this process (one GPU
// and one cuda backend each): results against sums computed here, as the gloo tests do.
// Skipped where there are fewer than two GPUs.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "nccl_helpers.hpp"

using namespace nccl_test;
using trainer::DType;
using trainer::Tensor;

namespace {

constexpr int kWorld = 2;

float bf16_to_f32(std::uint16_t v) {
  const std::uint32_t bits = static_cast<std::uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::uint16_t f32_to_bf16(float f) {  // round to nearest even (the inputs here are finite)
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

// Float rounding is bounded by the magnitudes summed, not by the (cancelling) sum.
void check_sums(const std::vector<float>& got, const std::vector<std::vector<float>>& inputs, double rtol) {
  REQUIRE(got.size() == inputs[0].size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    double expected = 0, magnitude = 0;
    for (const auto& in : inputs) {
      expected += in[k];
      magnitude += std::abs(in[k]);
    }
    if (!(std::abs(got[k] - expected) <= rtol * magnitude)) {
      FAIL("element " << k << ": got " << got[k] << ", expected " << expected);
    }
  }
}

}  // namespace

TEST_CASE("all_reduce sums f32 on two GPUs and both ranks get bitwise the same result", "[nccl][all_reduce]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  const std::vector<std::size_t> sizes = {1, 7, 1000, std::size_t{1} << 22};
  MemoryStore store;
  std::vector<std::vector<std::vector<float>>> results(sizes.size(), std::vector<std::vector<float>>(kWorld));
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto comm = ranks[static_cast<std::size_t>(r)].comm->connect(group("world", kWorld, r), store);
    RANK_REQUIRE(comm->rank() == r);
    RANK_REQUIRE(comm->size() == kWorld);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto t = to_device(be, DType::f32, random_floats(sizes[i], static_cast<std::uint32_t>(100 * i + r)));
      auto work = comm->all_reduce(t);
      work->wait();
      RANK_REQUIRE(work->ready());
      RANK_REQUIRE(work->busy_seconds() > 0);
      RANK_REQUIRE(work->exposed_seconds() >= 0);
      results[i][static_cast<std::size_t>(r)] = to_host<float>(be, t);
    }
  });
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    INFO(sizes[i] << " elements");
    std::vector<std::vector<float>> inputs;
    for (int r = 0; r < kWorld; ++r) inputs.push_back(random_floats(sizes[i], static_cast<std::uint32_t>(100 * i + r)));
    check_sums(results[i][0], inputs, 1e-6);
    REQUIRE(std::memcmp(results[i][0].data(), results[i][1].data(), sizes[i] * sizeof(float)) == 0);
  }
}

TEST_CASE("all_reduce sums i32 exactly and bf16 within its rounding", "[nccl][all_reduce]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  std::vector<std::vector<std::int32_t>> ints(kWorld);
  std::vector<std::vector<float>> halves(kWorld);
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto comm = ranks[static_cast<std::size_t>(r)].comm->connect(group("world", kWorld, r), store);
    std::vector<std::int32_t> v(1001);
    for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<std::int32_t>(k) * (r + 1) - 7;
    auto t = to_device(be, DType::i32, v);
    comm->all_reduce(t)->wait();
    ints[static_cast<std::size_t>(r)] = to_host<std::int32_t>(be, t);

    std::vector<std::uint16_t> h;
    for (float x : random_floats(5000, static_cast<std::uint32_t>(7 + r))) h.push_back(f32_to_bf16(x));
    auto b = to_device(be, DType::bf16, h);
    comm->all_reduce(b)->wait();
    std::vector<float> back;
    for (auto x : to_host<std::uint16_t>(be, b)) back.push_back(bf16_to_f32(x));
    halves[static_cast<std::size_t>(r)] = back;
  });
  for (int r = 0; r < kWorld; ++r) {
    for (std::size_t k = 0; k < 1001; ++k) {
      REQUIRE(ints[static_cast<std::size_t>(r)][k] == static_cast<std::int32_t>(k) * 3 - 14);
    }
  }
  std::vector<std::vector<float>> inputs;
  for (int r = 0; r < kWorld; ++r) {
    std::vector<float> in;
    for (float x : random_floats(5000, static_cast<std::uint32_t>(7 + r))) in.push_back(bf16_to_f32(f32_to_bf16(x)));
    inputs.push_back(in);
  }
  check_sums(halves[0], inputs, 1.0 / 128);  // one bf16 rounding of the sum: 2^-8 relative
}

TEST_CASE("reduce_scatter, all_gather and broadcast on two GPUs", "[nccl][collectives]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  const std::int64_t chunk = 3001;
  std::vector<std::vector<float>> scattered(kWorld), gathered(kWorld), broadcast0(kWorld), broadcast1(kWorld);
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto comm = ranks[static_cast<std::size_t>(r)].comm->connect(group("world", kWorld, r), store);
    auto in = to_device(be, DType::f32, random_floats(chunk * kWorld, static_cast<std::uint32_t>(10 + r)));
    auto out = be.allocate({chunk}, DType::f32);
    comm->reduce_scatter(out, in)->wait();
    scattered[static_cast<std::size_t>(r)] = to_host<float>(be, out);

    auto mine = to_device(be, DType::f32, random_floats(chunk, static_cast<std::uint32_t>(20 + r)));
    auto all = be.allocate({chunk * kWorld}, DType::f32);
    comm->all_gather(all, mine)->wait();
    gathered[static_cast<std::size_t>(r)] = to_host<float>(be, all);

    for (int root = 0; root < kWorld; ++root) {
      auto t = to_device(be, DType::f32, random_floats(777, static_cast<std::uint32_t>(30 + 10 * root + r)));
      comm->broadcast(t, root)->wait();
      (root == 0 ? broadcast0 : broadcast1)[static_cast<std::size_t>(r)] = to_host<float>(be, t);
    }
  });
  for (int r = 0; r < kWorld; ++r) {
    INFO("rank " << r);
    std::vector<std::vector<float>> inputs;
    for (int q = 0; q < kWorld; ++q) {
      const auto full = random_floats(chunk * kWorld, static_cast<std::uint32_t>(10 + q));
      inputs.emplace_back(full.begin() + chunk * r, full.begin() + chunk * (r + 1));
    }
    check_sums(scattered[static_cast<std::size_t>(r)], inputs, 1e-6);
    std::vector<float> expected;
    for (int q = 0; q < kWorld; ++q) {
      const auto part = random_floats(chunk, static_cast<std::uint32_t>(20 + q));
      expected.insert(expected.end(), part.begin(), part.end());
    }
    REQUIRE(gathered[static_cast<std::size_t>(r)] == expected);
    REQUIRE(broadcast0[static_cast<std::size_t>(r)] == random_floats(777, 30));
    REQUIRE(broadcast1[static_cast<std::size_t>(r)] == random_floats(777, 41));
  }
}

TEST_CASE("send and recv both ways between two GPUs", "[nccl][p2p]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  std::vector<std::vector<float>> got(kWorld);
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto comm = ranks[static_cast<std::size_t>(r)].comm->connect(group("world", kWorld, r), store);
    const int peer = 1 - r;
    auto out = to_device(be, DType::f32, random_floats(4099, static_cast<std::uint32_t>(50 + r)));
    auto in = be.allocate({4099}, DType::f32);
    // Rank 0 sends first, rank 1 receives first (NCCL sends block until the peer receives).
    if (r == 0) {
      auto s = comm->send(out, peer);
      auto v = comm->recv(in, peer);
      s->wait();
      v->wait();
    } else {
      auto v = comm->recv(in, peer);
      auto s = comm->send(out, peer);
      v->wait();
      s->wait();
    }
    got[static_cast<std::size_t>(r)] = to_host<float>(be, in);
  });
  REQUIRE(got[0] == random_floats(4099, 51));
  REQUIRE(got[1] == random_floats(4099, 50));
}

// What a pipeline does: both neighbours send before they receive (activations one way,
// gradients the other), messages larger than NCCL's buffers, and a collective in between.
// Without a lane per direction the two sends would wait for each other forever.
TEST_CASE("a point-to-point group lets both ranks send first, in both directions", "[nccl][p2p]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  constexpr std::int64_t kBig = 6 * 1024 * 1024;  // 24 MiB of f32 per message
  constexpr int kMessages = 3;
  std::vector<std::vector<std::vector<float>>> got(kWorld);
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto spec = group("pp", kWorld, r, 20s);
    spec.point_to_point = true;
    auto comm = ranks[static_cast<std::size_t>(r)].comm->connect(spec, store);
    const int peer = 1 - r;
    std::vector<std::unique_ptr<trainer::CommWork>> sends, recvs;
    std::vector<Tensor> outs, ins;
    for (int m = 0; m < kMessages; ++m) {
      outs.push_back(to_device(be, DType::f32, random_floats(kBig, static_cast<std::uint32_t>(100 * r + m))));
      sends.push_back(comm->send(outs.back(), peer));
    }
    auto sum = to_device(be, DType::f32, std::vector<float>{1.0f});
    comm->all_reduce(sum)->wait();
    for (int m = 0; m < kMessages; ++m) {
      ins.push_back(be.allocate({kBig}, DType::f32));
      recvs.push_back(comm->recv(ins.back(), peer));
    }
    for (auto& v : recvs) v->wait();
    for (auto& s : sends) s->wait();
    REQUIRE(to_host<float>(be, sum) == std::vector<float>{2.0f});
    for (const auto& t : ins) got[static_cast<std::size_t>(r)].push_back(to_host<float>(be, t));
  });
  for (int r = 0; r < kWorld; ++r) {
    for (int m = 0; m < kMessages; ++m) {
      INFO("rank " << r << " message " << m);
      REQUIRE(got[static_cast<std::size_t>(r)][static_cast<std::size_t>(m)] ==
              random_floats(kBig, static_cast<std::uint32_t>(100 * (1 - r) + m)));
    }
  }
}

TEST_CASE("ops are ordered after the backend's queued compute, and compute after wait() sees the result",
          "[nccl][streams]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  const std::int64_t n = std::int64_t{1} << 24;  // large enough that a missing order would show
  std::vector<std::vector<float>> got(kWorld);
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto comm = ranks[static_cast<std::size_t>(r)].comm->connect(group("world", kWorld, r), store);
    std::vector<float> ones(static_cast<std::size_t>(n), 1.0f + static_cast<float>(r));
    auto t = to_device(be, DType::f32, ones);
    // Queued, not yet run: t *= 3 several times, then the sum over ranks, then t += t.
    for (int i = 0; i < 4; ++i) be.axpby(t, 0.0f, t, 3.0f, n);
    auto work = comm->all_reduce(t);
    work->wait();
    be.axpby(t, 1.0f, t, 1.0f, n);
    got[static_cast<std::size_t>(r)] = to_host<float>(be, t);
    // Several ops in flight at once, waited in order.
    std::vector<Tensor> ts;
    std::vector<std::unique_ptr<trainer::CommWork>> works;
    for (int i = 0; i < 8; ++i) {
      ts.push_back(to_device(be, DType::f32, std::vector<float>(1000, static_cast<float>(i + r))));
      works.push_back(comm->all_reduce(ts.back()));
    }
    for (int i = 0; i < 8; ++i) {
      works[static_cast<std::size_t>(i)]->wait();
      const auto v = to_host<float>(be, ts[static_cast<std::size_t>(i)]);
      RANK_REQUIRE(v[0] == static_cast<float>(2 * i + 1) && v[999] == v[0], "op " << i << " gave " << v[0]);
    }
    comm->barrier();
  });
  // (1*81 + 2*81) * 2 = 486 everywhere.
  for (int r = 0; r < kWorld; ++r) {
    const auto& v = got[static_cast<std::size_t>(r)];
    for (std::size_t k = 0; k < v.size(); k += 4097) REQUIRE(v[k] == 486.0f);
    REQUIRE(v.back() == 486.0f);
  }
}

// wait_on_device: the backend's later work waits for the op on the stream, the host does not
// (the GPU queue is not drained); busy and exposed seconds are there once the op is done.
TEST_CASE("compute after wait_on_device() sees the result, and the op's times follow once it is done",
          "[nccl][streams]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  const std::int64_t n = std::int64_t{1} << 24;
  std::vector<std::vector<float>> got(kWorld);
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto comm = ranks[static_cast<std::size_t>(r)].comm->connect(group("world", kWorld, r), store);
    auto t = to_device(be, DType::f32, std::vector<float>(static_cast<std::size_t>(n), 1.0f + static_cast<float>(r)));
    for (int i = 0; i < 4; ++i) be.axpby(t, 0.0f, t, 3.0f, n);  // queued before the op
    auto work = comm->all_reduce(t);
    work->wait_on_device();
    be.axpby(t, 1.0f, t, 1.0f, n);  // queued after it, without a host wait in between
    // Several in flight, each waited for on the device, the handles dropped at once.
    std::vector<Tensor> ts;
    for (int i = 0; i < 8; ++i) {
      ts.push_back(to_device(be, DType::f32, std::vector<float>(1000, static_cast<float>(i + r))));
      comm->all_reduce(ts.back())->wait_on_device();
      be.axpby(ts.back(), 0.0f, ts.back(), 2.0f, 1000);
    }
    got[static_cast<std::size_t>(r)] = to_host<float>(be, t);  // the host read: everything is done
    for (int i = 0; i < 8; ++i) {
      const auto v = to_host<float>(be, ts[static_cast<std::size_t>(i)]);
      RANK_REQUIRE(v[0] == static_cast<float>(2 * (2 * i + 1)) && v[999] == v[0], "op " << i << " gave " << v[0]);
    }
    RANK_REQUIRE(work->ready());
    RANK_REQUIRE(work->busy_seconds() > 0);
    RANK_REQUIRE(work->exposed_seconds() >= 0);
    work->wait();  // returns at once: it is done
    comm->barrier();
  });
  for (int r = 0; r < kWorld; ++r) {
    const auto& v = got[static_cast<std::size_t>(r)];
    for (std::size_t k = 0; k < v.size(); k += 4097) REQUIRE(v[k] == 486.0f);
  }
}

TEST_CASE("groups over the same GPUs coexist, and a group can reconnect", "[nccl][groups]") {
  auto ranks = make_ranks(kWorld);
  if (ranks.empty()) return;
  MemoryStore store;
  run_ranks(kWorld, [&](int r) {
    auto& be = *ranks[static_cast<std::size_t>(r)].backend;
    auto& plugin = *ranks[static_cast<std::size_t>(r)].comm;
    auto a = plugin.connect(group("dp", kWorld, r), store);
    auto b = plugin.connect(group("tp.0", kWorld, r), store);
    auto x = to_device(be, DType::f32, std::vector<float>(10, 1.0f));
    auto y = to_device(be, DType::f32, std::vector<float>(10, 10.0f));
    auto wx = a->all_reduce(x);
    auto wy = b->all_reduce(y);
    wy->wait();
    wx->wait();
    RANK_REQUIRE(to_host<float>(be, x)[9] == 2.0f);
    RANK_REQUIRE(to_host<float>(be, y)[0] == 20.0f);
    a.reset();
    a = plugin.connect(group("dp", kWorld, r), store);
    a->all_reduce(x)->wait();
    RANK_REQUIRE(to_host<float>(be, x)[0] == 4.0f);
  });
}
