// The plugin file itself and the memory side of the backend: descriptor, keys, allocation,
// copies, and the device/dtype checks every op shares.
#include <catch2/catch.hpp>
#include <cstdint>

#include "cpu_backend_helpers.hpp"

using namespace cpu_test;
using trainer::DType;
using trainer::Tensor;

TEST_CASE("the cpu plugin describes itself", "[cpu][plugin]") {
  const auto& d = descriptor();
  CHECK(d.abi_version == trainer::kAbiVersion);
  CHECK(d.kind == trainer::PluginKind::backend);
  CHECK(std::string(d.name) == "cpu");
  const auto keys = d.keys();
  REQUIRE(keys.size() == 1);
  CHECK(keys[0].name == "threads");
  CHECK(keys[0].type == trainer::KeyType::integer);
  CHECK(keys[0].default_value == "0");
  CHECK(keys[0].min == 0.0);
  CHECK(backend().device() == trainer::Device::cpu);
  CHECK(std::string(backend().name()) == "cpu");
}

TEST_CASE("freed blocks are handed out again for the same size, and tensors may outlive the backend",
          "[cpu][memory]") {
  // A step frees and re-allocates the same activation sizes every micro-batch; fresh pages
  // from malloc would page-fault on first touch each time (see plugins/cpu/host_pool.hpp).
  auto& be = backend();
  const void* small = nullptr;
  const void* large = nullptr;
  {
    Tensor a = be.allocate({4096, 64}, DType::f32);   // 1 MiB
    Tensor b = be.allocate({4096, 128}, DType::f32);  // 2 MiB
    small = a.data();
    large = b.data();
  }
  // Each size gets its own block back (malloc would merge the two freed blocks and hand the
  // 2 MiB request the lower address, or map fresh pages).
  Tensor again_large = be.allocate({128, 4096}, DType::f32);
  Tensor again_small = be.allocate({64, 4096}, DType::f32);
  CHECK(again_large.data() == large);
  CHECK(again_small.data() == small);
  Tensor other = be.allocate({4096, 64}, DType::f32);  // the cached block is in use: a new one
  CHECK(other.data() != small);
  CHECK(reinterpret_cast<std::uintptr_t>(other.data()) % 64 == 0);

  // A tensor made by a backend that is then destroyed keeps its memory (the pool lives on).
  Tensor survivor;
  {
    auto config = trainer::ConfigNode::map();
    config["threads"] = trainer::ConfigNode::scalar("0");
    auto made = descriptor().create(trainer::PluginContext{config, nullptr});
    auto* own = dynamic_cast<trainer::Backend*>(made.get());
    REQUIRE(own != nullptr);
    survivor = own->allocate({1000}, DType::f32);
    own->fill_zero(survivor);
  }
  CHECK(download(survivor) == std::vector<float>(1000, 0.0f));
}

TEST_CASE("allocation is aligned and copies round-trip", "[cpu][memory]") {
  auto& be = backend();
  for (std::int64_t n : {1, 3, 17, 1000}) {
    Tensor t = be.allocate({n}, DType::f32);
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    CHECK(t.numel() == n);
  }
  std::mt19937 rng(81);
  const auto host = random_vector(123, rng);
  Tensor a = upload(host, {3, 41});
  CHECK(bitwise_equal(download(a), host));
  Tensor b = be.allocate({123}, DType::f32);
  be.copy(b, a);
  CHECK(bitwise_equal(download(b), host));
  be.fill_zero(b);
  CHECK(download(b) == std::vector<float>(123, 0.0f));
  Tensor i = upload_i32({1, -2, 3}, {3});
  std::vector<std::int32_t> back(3);
  be.copy_to_host(back.data(), i);
  CHECK(back == std::vector<std::int32_t>{1, -2, 3});
  be.synchronize();
  CHECK_THROWS_AS(be.copy(b, zeros({122})), std::invalid_argument);
}

TEST_CASE("ops reject tensors of the wrong device or dtype", "[cpu][memory]") {
  auto& be = backend();
  Tensor host = zeros({8});
  Tensor fake_device(std::shared_ptr<void>(), host.data(), {8}, DType::f32, trainer::Device::cuda);
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(be.gelu_forward(fake_device, host, 8), std::invalid_argument);
  CHECK_THROWS_WITH(be.residual_forward(host, host, fake_device, 8), Contains("residual_forward"));
  Tensor ints = be.allocate({8}, DType::i32);
  CHECK_THROWS_WITH(be.gelu_forward(host, ints, 8), Contains("i32"));
  CHECK_THROWS_WITH(be.gelu_forward(host, Tensor(), 8), Contains("empty"));
}
