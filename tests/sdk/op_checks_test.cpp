// The SDK's per-op argument checks (trainer/op_checks.hpp), without a backend: every backend
// calls the same list, so a wrong tensor gives the same message whichever runs it, and `act`
// moves only the activations to bf16 (statistics, gradients, losses stay f32).
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "trainer/op_checks.hpp"

using trainer::Device;
using trainer::DType;
using trainer::OpChecks;
using trainer::Shape;
using trainer::Tensor;

namespace {

constexpr OpChecks kCpu{"cpu backend", Device::cpu, "host memory"};
constexpr OpChecks kCuda{"cuda backend", Device::cuda, "device (cuda) memory"};

// Host memory labelled with `device`: the checks never read the elements.
Tensor make(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu) {
  const auto bytes = static_cast<std::size_t>(trainer::shape_numel(shape)) * trainer::dtype_size(dtype) + 1;
  std::shared_ptr<void> storage(::operator new(bytes), [](void* p) { ::operator delete(p); });
  void* p = storage.get();
  return Tensor(std::move(storage), p, shape, dtype, device);
}

// The message a failing check throws ("" when it passes).
std::string message(const std::function<void()>& check) {
  try {
    check();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every backend gets the same message from an op's check, with its own prefix", "[sdk][op_checks]") {
  const auto cpu_message = message([] {
    kCpu.matmul_forward(make({4, 3}), make({4, 5}), make({3, 4}), Tensor(), 4, 5, 3);
  });
  const auto cuda_message = message([] {
    const Device d = Device::cuda;
    kCuda.matmul_forward(make({4, 3}, DType::f32, d), make({4, 5}, DType::f32, d), make({3, 4}, DType::f32, d),
                         Tensor(), 4, 5, 3);
  });
  const std::string what = "matmul_forward: weight has shape [3,4] (12 elements), expected OC*C = 15 elements";
  CHECK(cpu_message == "cpu backend: " + what);
  CHECK(cuda_message == "cuda backend: " + what);
  // A tensor of the other backend's device is named as such.
  CHECK(message([] { kCuda.gelu_forward(make({4}), make({4}), 4); }) ==
        "cuda backend: gelu_forward: out is not in device (cuda) memory");
}

TEST_CASE("the op checks name the dimension, the tensor and the formula", "[sdk][op_checks]") {
  CHECK(message([] { kCpu.matmul_forward(make({4, 3}), make({4, 5}), make({3, 5}), Tensor(), 0, 5, 3); }) ==
        "cpu backend: matmul_forward: N = 0 must be positive");
  CHECK(message([] { kCpu.matmul_forward(make({4, 3}), make({4, 5}), make({3, 5}), make({4}), 4, 5, 3); }) ==
        "cpu backend: matmul_forward: bias has shape [4] (4 elements), expected OC = 3 elements");
  CHECK(message([] { kCpu.matmul_forward(make({4, 3}), make({4, 5}), make({3, 5}), Tensor(), 4, 5, 3); }).empty());
  CHECK(message([] { kCpu.attention_forward(make({1, 4, 6}), make({1, 4, 4}), make({1, 4, 18}), 1, 4, 6, 4); }) ==
        "cpu backend: attention_forward: C = 6 is not divisible by NH = 4");
  CHECK(message([] { kCpu.attention_backward(make({1, 4, 18}), make({1, 4, 6}), make({1, 4, 18}), make({1, 4, 6}),
                                             make({1, 2, 3}), 1, 4, 6, 2); }) ==
        "cpu backend: attention_backward: stats has shape [1,2,3] (6 elements), expected B*NH*T = 8 elements");
  CHECK(message([] { kCpu.dropout("dropout_backward", "dinp", make({8}), "dout", make({8}), 1.0f, 8); }) ==
        "cpu backend: dropout_backward: p = 1.000000 is outside [0, 1)");
  CHECK(message([] { kCpu.crossentropy_forward_backward(make({2}), Tensor(), make({2, 3}), make({2}), 2, 3); }) ==
        "cpu backend: crossentropy_forward_backward: targets is f32, expected i32");
  CHECK(message([] { kCpu.adamw_update(make({4}), make({4}), make({4}), make({4}), 4, 0); }) ==
        "cpu backend: adamw_update: t = 0 must be positive");
  CHECK(message([] { kCpu.copy(make({3}), make({4})); }) ==
        "cpu backend: copy: dst has 12 bytes [3], src has 16 bytes [4]");
  CHECK(message([] { kCpu.convert(make({3}, DType::bf16), DType::bf16, make({4}), DType::f32); }) ==
        "cpu backend: convert: dst has 3 elements, src has 4");
}

TEST_CASE("the embedding checks return the vocabulary and need T rows of positions", "[sdk][op_checks]") {
  const Tensor tokens = make({2, 3}, DType::i32);
  CHECK(kCpu.embedding_forward(make({2, 3, 4}), tokens, make({10, 4}), make({5, 4}), 2, 3, 4) == 10);
  CHECK(message([] {
          kCpu.embedding_forward(make({2, 3, 4}), make({2, 3}, DType::i32), make({10, 4}), make({2, 4}), 2, 3, 4);
        }) == "cpu backend: embedding_forward: wpe has fewer than T = 3 rows");
  CHECK(message([] {
          kCpu.embedding_backward(make({9}), make({5, 4}), make({2, 3, 4}), make({2, 3}, DType::i32), 2, 3, 4);
        }) == "cpu backend: embedding_backward: dwte has shape [9], not a whole number of rows of C = 4");
}

TEST_CASE("act makes the activations bf16; statistics, gradients and losses stay f32", "[sdk][op_checks]") {
  constexpr DType bf = DType::bf16;
  // layernorm: out/inp/weight/bias in act, mean/rstd f32.
  CHECK(message([] {
          kCpu.layernorm_forward(make({4, 8}, bf), make({4}), make({4}), make({4, 8}, bf), make({8}, bf),
                                 make({8}, bf), 4, 8, bf);
        }).empty());
  CHECK(message([] {
          kCpu.layernorm_forward(make({4, 8}, bf), make({4}, bf), make({4}), make({4, 8}, bf), make({8}, bf),
                                 make({8}, bf), 4, 8, bf);
        }) == "cpu backend: layernorm_forward: mean is bf16, expected f32");
  // matmul_backward: parameter gradients f32 whatever act is.
  CHECK(message([] {
          kCpu.matmul_backward(make({4, 5}, bf), make({3, 5}, bf), Tensor(), make({4, 3}, bf), make({4, 5}, bf),
                               make({3, 5}, bf), 4, 5, 3, bf);
        }) == "cpu backend: matmul_backward: dweight is bf16, expected f32");
  // matmul_forward: bf16 inputs may write f32 out (logits), and bias follows out.
  CHECK(message([] {
          kCpu.matmul_forward(make({4, 3}), make({4, 5}, bf), make({3, 5}, bf), make({3}), 4, 5, 3, bf, DType::f32);
        }).empty());
  CHECK(message([] {
          kCpu.matmul_forward(make({4, 3}, bf), make({4, 5}, bf), make({3, 5}), Tensor(), 4, 5, 3, bf, bf);
        }) == "cpu backend: matmul_forward: weight is f32, expected bf16");
  // embedding: forward tables in act, backward tables (gradients) f32.
  CHECK(kCpu.embedding_forward(make({2, 3, 4}, bf), make({2, 3}, DType::i32), make({10, 4}, bf), make({5, 4}, bf), 2,
                               3, 4, bf) == 10);
  CHECK(kCpu.embedding_backward(make({10, 4}), make({5, 4}), make({2, 3, 4}, bf), make({2, 3}, DType::i32), 2, 3, 4,
                                bf) == 10);
  // crossentropy: logits in act, losses f32.
  CHECK(message([] {
          kCpu.crossentropy_forward_backward(make({2}, bf), Tensor(), make({2, 3}, bf), make({2}, DType::i32), 2, 3,
                                             bf);
        }) == "cpu backend: crossentropy_forward_backward: losses is bf16, expected f32");
}
