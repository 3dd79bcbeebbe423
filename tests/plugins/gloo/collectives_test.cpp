// The gloo comm plugin's collectives with ranks as threads of this process, each with its
// own communicator over TCP on 127.0.0.1: results against references computed here.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gloo_helpers.hpp"

using namespace gloo_test;
using trainer::DType;
using trainer::Tensor;

namespace {

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

// "tp.1": appended, since GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
std::string indexed(const char* prefix, int i) { return std::string(prefix).append(std::to_string(i)); }

}  // namespace

TEST_CASE("all_reduce sums f32 and every rank gets bitwise the same result", "[gloo][all_reduce]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  const std::vector<std::size_t> sizes = {1, 7, 1000, std::size_t{1} << 20};
  for (int world : {2, 3, 4}) {
    MemoryStore store;
    // results[size index][rank]: compared bit for bit after every rank finished.
    std::vector<std::vector<std::vector<float>>> results(sizes.size(), std::vector<std::vector<float>>(world));
    run_ranks(world, [&](int r) {
      auto comm = backend->connect(group("world", iota(world), r), store);
      RANK_REQUIRE(comm->rank() == r);
      RANK_REQUIRE(comm->size() == world);
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        auto t = from_vector(DType::f32, random_floats(sizes[i], static_cast<std::uint32_t>(100 * i + r)));
        comm->all_reduce(t)->wait();
        results[i][static_cast<std::size_t>(r)] = to_vector<float>(t);
      }
    });
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      INFO("world " << world << ", " << sizes[i] << " elements");
      // Float rounding is bounded by the magnitudes summed, not by the (cancelling) sum.
      std::vector<double> expected(sizes[i], 0.0), magnitude(sizes[i], 0.0);
      for (int r = 0; r < world; ++r) {
        const auto in = random_floats(sizes[i], static_cast<std::uint32_t>(100 * i + r));
        for (std::size_t k = 0; k < sizes[i]; ++k) {
          expected[k] += in[k];
          magnitude[k] += std::abs(in[k]);
        }
      }
      const auto& first = results[i][0];
      REQUIRE(first.size() == sizes[i]);
      for (std::size_t k = 0; k < sizes[i]; ++k) {
        if (std::abs(first[k] - expected[k]) > 1e-6 * magnitude[k]) {
          FAIL("element " << k << ": got " << first[k] << ", expected " << expected[k]);
        }
      }
      for (int r = 1; r < world; ++r) {
        REQUIRE(std::memcmp(first.data(), results[i][static_cast<std::size_t>(r)].data(), sizes[i] * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("all_reduce sums i32 exactly", "[gloo][all_reduce]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  MemoryStore store;
  run_ranks(3, [&](int r) {
    auto comm = backend->connect(group("world", iota(3), r), store);
    std::vector<std::int32_t> v(1001);
    for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<std::int32_t>(k) * (r + 1) - 7;
    auto t = from_vector(DType::i32, v);
    comm->all_reduce(t)->wait();
    const auto got = to_vector<std::int32_t>(t);
    for (std::size_t k = 0; k < v.size(); ++k) RANK_REQUIRE(got[k] == static_cast<std::int32_t>(k) * 6 - 21);
  });
}

TEST_CASE("reduce_scatter gives rank r the sum of chunk r", "[gloo][reduce_scatter]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  for (int world : {2, 3, 4}) {
    MemoryStore store;
    run_ranks(world, [&](int r) {
      auto comm = backend->connect(group("world", iota(world), r), store);
      for (std::int64_t chunk : {1, 5, 1000, 65537}) {
        const auto n = static_cast<std::size_t>(chunk * world);
        auto in = from_vector(DType::f32, random_floats(n, static_cast<std::uint32_t>(7 * chunk + r)));
        auto out = host_tensor(DType::f32, chunk);
        comm->reduce_scatter(out, in)->wait();
        std::vector<double> expected(static_cast<std::size_t>(chunk), 0.0), magnitude(expected);
        for (int q = 0; q < world; ++q) {
          const auto v = random_floats(n, static_cast<std::uint32_t>(7 * chunk + q));
          for (std::int64_t k = 0; k < chunk; ++k) {
            const float x = v[static_cast<std::size_t>(r * chunk + k)];
            expected[static_cast<std::size_t>(k)] += x;
            magnitude[static_cast<std::size_t>(k)] += std::abs(x);
          }
        }
        const auto got = to_vector<float>(out);
        for (std::size_t k = 0; k < got.size(); ++k) {
          RANK_REQUIRE(std::abs(got[k] - expected[k]) <= 1e-6 * magnitude[k],
                       "world " << world << " chunk " << chunk << " rank " << r << " element " << k << ": got "
                                << got[k] << ", expected " << expected[k]);
        }
        // The input is left as it was.
        RANK_REQUIRE(to_vector<float>(in) == random_floats(n, static_cast<std::uint32_t>(7 * chunk + r)));
      }
      // i32, in place: out is chunk r of in.
      std::vector<std::int32_t> v(static_cast<std::size_t>(4 * world));
      for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<std::int32_t>(k) + 100 * r;
      auto in = from_vector(DType::i32, v);
      auto out = in.view(4 * r, {4});
      comm->reduce_scatter(out, in)->wait();
      const auto got = to_vector<std::int32_t>(out);
      for (int k = 0; k < 4; ++k) {
        RANK_REQUIRE(got[static_cast<std::size_t>(k)] == world * (4 * r + k) + 100 * world * (world - 1) / 2);
      }
    });
  }
}

TEST_CASE("all_gather places rank r's input at chunk r", "[gloo][all_gather]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  for (int world : {2, 3}) {
    MemoryStore store;
    run_ranks(world, [&](int r) {
      auto comm = backend->connect(group("world", iota(world), r), store);
      for (std::int64_t n : {1, 33, 100000}) {
        auto in = from_vector(DType::f32, random_floats(static_cast<std::size_t>(n), static_cast<std::uint32_t>(r)));
        auto out = host_tensor(DType::f32, n * world);
        comm->all_gather(out, in)->wait();
        std::vector<float> expected;
        for (int q = 0; q < world; ++q) {
          const auto v = random_floats(static_cast<std::size_t>(n), static_cast<std::uint32_t>(q));
          expected.insert(expected.end(), v.begin(), v.end());
        }
        RANK_REQUIRE(to_vector<float>(out) == expected);
      }
      // bf16 moves as bytes.
      auto in = from_vector(DType::bf16, std::vector<std::uint16_t>(3, static_cast<std::uint16_t>(0x3f80 + r)));
      auto out = host_tensor(DType::bf16, 3 * world);
      comm->all_gather(out, in)->wait();
      const auto got = to_vector<std::uint16_t>(out);
      for (std::size_t k = 0; k < got.size(); ++k) RANK_REQUIRE(got[k] == 0x3f80 + static_cast<int>(k / 3));
    });
  }
}

TEST_CASE("broadcast from each root", "[gloo][broadcast]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  const int world = 4;
  MemoryStore store;
  run_ranks(world, [&](int r) {
    auto comm = backend->connect(group("world", iota(world), r), store);
    for (int root = 0; root < world; ++root) {
      const auto source = random_floats(5000, static_cast<std::uint32_t>(root + 50));
      auto t = r == root ? from_vector(DType::f32, source) : host_tensor(DType::f32, 5000);
      comm->broadcast(t, root)->wait();
      RANK_REQUIRE(to_vector<float>(t) == source);
    }
  });
}

TEST_CASE("send/recv pass values around a ring, sends issued before recvs", "[gloo][p2p]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  const int world = 3;
  MemoryStore store;
  run_ranks(world, [&](int r) {
    auto comm = backend->connect(group("world", iota(world), r), store);
    const int right = (r + 1) % world, left = (r + world - 1) % world;
    for (int round = 0; round < 5; ++round) {
      // A gloo send only completes once the peer posts its recv: every rank sends first,
      // which must not block the recv issued after it.
      auto out = from_vector(DType::i32, std::vector<std::int32_t>(257, 1000 * round + r));
      auto in = host_tensor(DType::i32, 257);
      auto s = comm->send(out, right);
      auto q = comm->recv(in, left);
      q->wait();
      s->wait();
      RANK_REQUIRE(to_vector<std::int32_t>(in) == std::vector<std::int32_t>(257, 1000 * round + left));
    }
    // Several messages to one peer stay matched in program order.
    if (r == 0) {
      std::vector<std::unique_ptr<trainer::CommWork>> works;
      for (int k = 0; k < 4; ++k) works.push_back(comm->send(from_vector(DType::f32, std::vector<float>(10, float(k))), 1));
      for (auto& w : works) w->wait();
    } else if (r == 1) {
      for (int k = 0; k < 4; ++k) {
        auto t = host_tensor(DType::f32, 10);
        comm->recv(t, 0)->wait();
        RANK_REQUIRE(to_vector<float>(t) == std::vector<float>(10, float(k)));
      }
    }
    comm->barrier();
  });
}

TEST_CASE("a send reads its tensor in program order, even if its peer receives later", "[gloo][p2p]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  MemoryStore store;
  run_ranks(2, [&](int r) {
    auto comm = backend->connect(group("world", {0, 1}, r), store);
    auto t = from_vector(DType::f32, std::vector<float>(64, float(r + 1)));
    if (r == 0) {
      // The send cannot complete before rank 1 posts its recv, which it does only after the
      // broadcast that overwrites t here: what arrives must still be the value at send time.
      auto s = comm->send(t, 1);
      comm->broadcast(t, 1)->wait();
      s->wait();
      RANK_REQUIRE(to_vector<float>(t) == std::vector<float>(64, 2.0f));
    } else {
      comm->broadcast(t, 1)->wait();
      auto in = host_tensor(DType::f32, 64);
      comm->recv(in, 0)->wait();
      RANK_REQUIRE(to_vector<float>(in) == std::vector<float>(64, 1.0f));
    }
  });
}

TEST_CASE("ops issued without waiting run asynchronously and complete in order", "[gloo][async]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  const int world = 3;
  MemoryStore store;
  run_ranks(world, [&](int r) {
    auto comm = backend->connect(group("world", iota(world), r), store);
    std::vector<Tensor> tensors;
    std::vector<std::unique_ptr<trainer::CommWork>> works;
    // Repeated in-place all-reduces of one tensor: only program order gives world^k.
    auto chained = from_vector(DType::f32, std::vector<float>(100, 1.0f));
    for (int k = 0; k < 16; ++k) {
      tensors.push_back(from_vector(DType::f32, std::vector<float>(20000, float(r + k))));
      works.push_back(comm->all_reduce(tensors.back()));
      works.push_back(comm->all_reduce(chained));
      if (k % 5 == 0) works.push_back(comm->broadcast(chained, k % world));
    }
    works.back()->wait();
    for (auto& w : works) RANK_REQUIRE(w->ready());  // FIFO: everything issued before is done
    for (int k = 0; k < 16; ++k) {
      RANK_REQUIRE(to_vector<float>(tensors[static_cast<std::size_t>(k)]) == std::vector<float>(20000, float(3 + 3 * k)));
    }
    RANK_REQUIRE(to_vector<float>(chained) == std::vector<float>(100, 43046721.0f));  // 3^16
    for (auto& w : works) {
      w->wait();
      RANK_REQUIRE(w->busy_seconds() >= 0.0);
    }
    RANK_REQUIRE(works.front()->busy_seconds() > 0.0);
  });
}

TEST_CASE("groups over the same ranks coexist, and a group can reconnect", "[gloo][groups]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  MemoryStore store;
  // 4 ranks as a 2x2 mesh: tp pairs {0,1},{2,3}; dp pairs {0,2},{1,3}; plus the whole world.
  run_ranks(4, [&](int r) {
    const int tp_index = r / 2, dp_index = r % 2;
    auto world = backend->connect(group("world", iota(4), r), store);
    auto tp = backend->connect(group(indexed("tp.", tp_index), {2 * tp_index, 2 * tp_index + 1}, r), store);
    auto dp = backend->connect(group(indexed("dp.", dp_index), {dp_index, dp_index + 2}, r), store);
    RANK_REQUIRE(tp->rank() == r % 2);
    RANK_REQUIRE(dp->rank() == r / 2);
    for (int step = 0; step < 3; ++step) {
      auto a = from_vector(DType::f32, std::vector<float>(1000, float(r)));
      auto b = from_vector(DType::f32, std::vector<float>(1000, float(r)));
      auto c = from_vector(DType::f32, std::vector<float>(1000, float(r)));
      auto wa = tp->all_reduce(a);  // in flight on all three groups at once
      auto wb = dp->all_reduce(b);
      auto wc = world->all_reduce(c);
      wc->wait();
      wb->wait();
      wa->wait();
      RANK_REQUIRE(to_vector<float>(a) == std::vector<float>(1000, float(4 * tp_index + 1)));
      RANK_REQUIRE(to_vector<float>(b) == std::vector<float>(1000, float(2 * dp_index + 2)));
      RANK_REQUIRE(to_vector<float>(c) == std::vector<float>(1000, 6.0f));
    }
    // Reconnecting a group under the same name uses fresh store keys.
    tp.reset();
    tp = backend->connect(group(indexed("tp.", tp_index), {2 * tp_index, 2 * tp_index + 1}, r), store);
    auto t = from_vector(DType::i32, std::vector<std::int32_t>(3, r));
    tp->all_reduce(t)->wait();
    RANK_REQUIRE(to_vector<std::int32_t>(t) == std::vector<std::int32_t>(3, 4 * tp_index + 1));
    world->barrier();
  });
}

TEST_CASE("a group of one is a no-op", "[gloo][groups]") {
  if (!plugin_available()) return;
  auto backend = make_backend();
  MemoryStore store;
  auto comm = backend->connect(group("solo", {5}, 5), store);
  REQUIRE(comm->size() == 1);
  auto t = from_vector(DType::f32, std::vector<float>{1, 2, 3});
  comm->all_reduce(t)->wait();
  auto out = host_tensor(DType::f32, 3);
  comm->reduce_scatter(out, t)->wait();
  comm->all_gather(out, t)->wait();
  comm->broadcast(t, 0)->wait();
  comm->barrier();
  REQUIRE(to_vector<float>(out) == std::vector<float>{1, 2, 3});
}
