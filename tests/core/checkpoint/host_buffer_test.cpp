// HostBuffer: the snapshot's host memory grows keeping its contents, zero-fills on request,
// keeps its memory when shrinking, and moves.
#include <catch2/catch.hpp>

#include "checkpoint/host_buffer.hpp"

using trainer::checkpoint::HostBuffer;

TEST_CASE("HostBuffer grows, zero-fills and moves", "[host_buffer]") {
  HostBuffer b;
  CHECK(b.size() == 0);
  for (int i = 0; i < 1000; ++i) b.push_back(static_cast<float>(i));
  REQUIRE(b.size() == 1000);
  bool kept = true;
  for (int i = 0; i < 1000; ++i) kept = kept && b.data()[i] == static_cast<float>(i);
  CHECK(kept);
  const float* before = b.data();
  b.resize(10);
  CHECK(b.size() == 10);
  CHECK(b.data() == before);  // shrinking keeps the memory
  b.assign_zeros(5000);
  REQUIRE(b.size() == 5000);
  bool zero = true;
  for (std::size_t i = 0; i < b.size(); ++i) zero = zero && b.data()[i] == 0.0f;
  CHECK(zero);
  HostBuffer c = std::move(b);
  CHECK(c.size() == 5000);
  CHECK(b.size() == 0);
  CHECK(b.data() == nullptr);
  c = HostBuffer();
  CHECK(c.size() == 0);
}
