// BlockArena (the cuda backend's allocator for blocks over 1 MiB): best fit, split, merge,
// giving wholly free segments back, and the peaks it reports. Host bookkeeping only, so it
// runs without a GPU: the segments here come from a counting fake of cudaMalloc.
#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "../../../plugins/cuda/block_arena.hpp"

using trainer::gpu::BlockArena;

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

// Hands out addresses from a large host buffer-free counter; refuses beyond `limit` bytes.
struct FakeDevice {
  std::size_t limit = SIZE_MAX;
  std::size_t held = 0;
  std::uintptr_t next = 0x10000000;
  std::map<void*, std::size_t> segments;
  BlockArena arena{[this](std::size_t bytes) -> void* {
                     if (held + bytes > limit) return nullptr;
                     void* p = reinterpret_cast<void*>(next);
                     next += bytes + (std::size_t{64} << 20);  // gaps: segments are never adjacent
                     held += bytes;
                     segments[p] = bytes;
                     return p;
                   },
                   [this](void* p) {
                     held -= segments.at(p);
                     segments.erase(p);
                   }};
};

char* as_char(void* p) { return static_cast<char*>(p); }

}  // namespace

TEST_CASE("a block is the request rounded to 512 bytes, from a segment rounded to 2 MiB", "[block_arena]") {
  FakeDevice dev;
  void* a = dev.arena.allocate(3 * kMiB + 1);
  REQUIRE(a != nullptr);
  CHECK(dev.arena.reserved() == 4 * kMiB);
  CHECK(dev.segments.size() == 1);
  // The segment's rest (< 1 MiB) is not split off: it counts as in use, and the next request
  // needs a new segment.
  CHECK(dev.arena.live() == 4 * kMiB);
  void* b = dev.arena.allocate(2 * kMiB);
  CHECK(dev.segments.size() == 2);
  CHECK(b != a);
}

TEST_CASE("the rest of a segment is split off and serves later requests", "[block_arena]") {
  FakeDevice dev;
  void* a = dev.arena.allocate(10 * kMiB);
  dev.arena.release(a);
  void* b = dev.arena.allocate(4 * kMiB);
  void* c = dev.arena.allocate(6 * kMiB);
  CHECK(dev.segments.size() == 1);  // both came from the one 10 MiB segment
  CHECK(b == a);
  CHECK(as_char(c) == as_char(b) + 4 * kMiB);
  CHECK(dev.arena.live() == 10 * kMiB);
}

TEST_CASE("released neighbours merge, so a large request fits where small ones were", "[block_arena]") {
  FakeDevice dev;
  void* whole = dev.arena.allocate(12 * kMiB);
  dev.arena.release(whole);
  std::vector<void*> parts;
  for (int i = 0; i < 4; ++i) parts.push_back(dev.arena.allocate(3 * kMiB));
  CHECK(dev.segments.size() == 1);
  // Released in an order that exercises merging with the block before, after, and both.
  dev.arena.release(parts[1]);
  dev.arena.release(parts[3]);
  dev.arena.release(parts[2]);  // joins 1 and 3
  dev.arena.release(parts[0]);  // joins the rest
  void* again = dev.arena.allocate(12 * kMiB);
  CHECK(again == whole);
  CHECK(dev.segments.size() == 1);
}

TEST_CASE("best fit: the smallest free block that holds the request", "[block_arena]") {
  FakeDevice dev;
  void* big = dev.arena.allocate(20 * kMiB);
  void* small = dev.arena.allocate(6 * kMiB);
  dev.arena.release(big);
  dev.arena.release(small);
  void* p = dev.arena.allocate(5 * kMiB);
  CHECK(p == small);
  void* q = dev.arena.allocate(19 * kMiB);
  CHECK(q == big);
  CHECK(dev.segments.size() == 2);
}

TEST_CASE("a steady loop of allocations stops growing after its first pass", "[block_arena]") {
  // The shape of a training step: parameters live throughout; per-layer activations of a few
  // sizes pile up in the forward and go in reverse in the backward, with temporaries between.
  FakeDevice dev;
  void* params = dev.arena.allocate(500 * kMiB);
  std::size_t after_first = 0;
  for (int step = 0; step < 5; ++step) {
    std::vector<void*> saved;
    for (int layer = 0; layer < 12; ++layer) {
      saved.push_back(dev.arena.allocate(48 * kMiB + 4096));
      saved.push_back(dev.arena.allocate(192 * kMiB + 4096));
      void* tmp = dev.arena.allocate(96 * kMiB);
      dev.arena.release(tmp);
    }
    void* logits = dev.arena.allocate(3200 * kMiB);
    dev.arena.release(logits);
    while (!saved.empty()) {
      void* grad = dev.arena.allocate(48 * kMiB + 4096);
      dev.arena.release(grad);
      dev.arena.release(saved.back());
      saved.pop_back();
    }
    if (step == 0) after_first = dev.arena.reserved();
    CHECK(dev.arena.reserved() == after_first);
  }
  dev.arena.release(params);
  // Against the former size classes (each class its own free list, sizes rounded up to a
  // quarter power of two): that pool reserves, per class, the most blocks of it ever live.
  const auto quarter_pow2 = [](std::size_t bytes) {
    std::size_t top = 1;
    while (top * 2 <= bytes) top *= 2;
    return (bytes + top / 4 - 1) / (top / 4) * (top / 4);
  };
  // (13 blocks of the 48 MiB class: the backward's first temporary comes while 12 are saved.)
  const std::size_t classes = quarter_pow2(500 * kMiB) + 13 * quarter_pow2(48 * kMiB + 4096) +
                              12 * quarter_pow2(192 * kMiB + 4096) + quarter_pow2(96 * kMiB) +
                              quarter_pow2(3200 * kMiB);
  INFO("arena " << dev.arena.peak_reserved() << " bytes, classes " << classes << ", most in use "
                << dev.arena.peak_live());
  CHECK(dev.arena.peak_reserved() < classes);
}

TEST_CASE("out of memory: wholly free segments go back and the request is retried", "[block_arena]") {
  FakeDevice dev;
  dev.limit = 16 * kMiB;
  void* a = dev.arena.allocate(8 * kMiB);
  void* b = dev.arena.allocate(6 * kMiB);
  dev.arena.release(a);  // a free 8 MiB segment: too small for the next request
  void* c = dev.arena.allocate(10 * kMiB);
  REQUIRE(c != nullptr);
  CHECK(dev.arena.reserved() == 16 * kMiB);  // the 8 MiB went back, the 10 MiB came
  CHECK(dev.segments.size() == 2);
  CHECK(dev.arena.allocate(4 * kMiB) == nullptr);  // b's segment is in use: nothing to give back
  dev.arena.release(b);
  dev.arena.release(c);
  CHECK(dev.arena.release_free_segments() == 16 * kMiB);
  CHECK(dev.held == 0);
}

TEST_CASE("releasing a block twice, or one it never gave, is refused", "[block_arena]") {
  FakeDevice dev;
  void* a = dev.arena.allocate(2 * kMiB);
  dev.arena.release(a);
  CHECK_THROWS_AS(dev.arena.release(a), std::invalid_argument);
  int x = 0;
  CHECK_THROWS_AS(dev.arena.release(&x), std::invalid_argument);
}

TEST_CASE("peaks: bytes reserved and bytes in use, each at its highest", "[block_arena]") {
  FakeDevice dev;
  void* a = dev.arena.allocate(4 * kMiB);
  void* b = dev.arena.allocate(4 * kMiB);
  dev.arena.release(a);
  dev.arena.release(b);
  CHECK(dev.arena.live() == 0);
  CHECK(dev.arena.peak_live() == 8 * kMiB);
  CHECK(dev.arena.peak_reserved() == 8 * kMiB);
  CHECK(dev.arena.reserved() == 8 * kMiB);  // cached, not given back
}
