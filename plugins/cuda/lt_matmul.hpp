// LtMatmul: cuBLASLt matrix products for the mixed-precision path (bf16 operands, f32
// compute, bf16 or f32 output, optional bias epilogue, beta = 1 to accumulate), with the
// matmul descriptor, layouts and the heuristic's algorithm cached per shape. Host C++.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

namespace trainer::gpu {

// One column-major product D[m,n] = alpha op(A) op(B) + beta C, as cuBLAS sees it; C is D
// unless run() is given another matrix of D's layout.
struct LtShape {
  cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  int m = 0, n = 0, k = 0;
  std::int64_t lda = 0, ldb = 0, ldd = 0;
  cudaDataType_t ab_type = CUDA_R_16BF, d_type = CUDA_R_16BF;
  bool bias = false;  // D += bias[m] broadcast over columns (bias of d_type)
  bool accumulate = false;  // beta = 1
  // GELU epilogues (tanh approximation) with an auxiliary m x n matrix of d_type, ld ldd:
  // forward writes D = gelu(product + bias) and the pre-activation to aux; backward
  // (dgelu) writes D = product * gelu'(aux).
  enum class Gelu { none, forward, backward };
  Gelu gelu = Gelu::none;
  auto key() const {
    return std::make_tuple(static_cast<int>(ta), static_cast<int>(tb), m, n, k, lda, ldb, ldd,
                           static_cast<int>(ab_type), static_cast<int>(d_type), bias, accumulate,
                           static_cast<int>(gelu));
  }
};

class LtMatmul {
 public:
  // workspace: device memory the products may use (owned by the caller, stream-ordered).
  // deterministic: only algorithms without split-K. (cuBLASLt's split-K reductions are
  // run-to-run deterministic too, per its documentation: in place with counters, or through
  // the workspace; this mode also makes results independent of the split the heuristic picks.)
  LtMatmul(cudaStream_t stream, void* workspace, std::size_t workspace_bytes, bool deterministic);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // Throws std::runtime_error naming `op` on any cuBLASLt failure.
  // aux: the GELU epilogue's auxiliary matrix (shape.gelu), else null. C: the matrix added
  // (shape.accumulate), if not D itself.
  void run(const char* op, const LtShape& shape, const void* A, const void* B, void* D, const void* bias,
           float alpha = 1.0f, void* aux = nullptr, const void* C = nullptr);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  // Alignments (bytes, at most 256) of A, B and D: the heuristic must know them.
  using Key = std::tuple<decltype(LtShape{}.key()), unsigned, unsigned, unsigned>;
  Plan& plan(const char* op, const LtShape& shape, const Key& key, const void* bias, void* aux);

  cudaStream_t stream_;
  void* workspace_;
  std::size_t workspace_bytes_;
  bool deterministic_;
  cublasLtHandle_t handle_ = nullptr;
  std::map<Key, Plan> plans_;
};

}  // namespace trainer::gpu
