#include "lt_matmul.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace trainer::gpu {
namespace {

void check(cublasStatus_t status, const char* op, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cuda backend: ") + op + ": " + what + " failed: " +
                             cublasGetStatusName(status) + ": " + cublasGetStatusString(status));
  }
}

unsigned alignment(const void* p) {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  unsigned a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

}  // namespace

LtMatmul::LtMatmul(cudaStream_t stream, void* workspace, std::size_t workspace_bytes, bool deterministic)
    : stream_(stream), workspace_(workspace), workspace_bytes_(workspace_bytes), deterministic_(deterministic) {
  check(cublasLtCreate(&handle_), "create", "cublasLtCreate");
}

LtMatmul::~LtMatmul() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.d);
    cublasLtMatmulDescDestroy(p.desc);
  }
  if (handle_) cublasLtDestroy(handle_);
}

LtMatmul::Plan& LtMatmul::plan(const char* op, const LtShape& s, const Key& key, const void* bias, void* aux) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  Plan p;
  check(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), op, "cublasLtMatmulDescCreate");
  check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &s.ta, sizeof(s.ta)), op,
        "cublasLtMatmulDescSetAttribute(TRANSA)");
  check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &s.tb, sizeof(s.tb)), op,
        "cublasLtMatmulDescSetAttribute(TRANSB)");
  cublasLtEpilogue_t epilogue = s.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  if (s.gelu == LtShape::Gelu::forward) epilogue = s.bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
  if (s.gelu == LtShape::Gelu::backward) {
    if (s.bias) throw std::logic_error(std::string("cuda backend: ") + op + ": no bias with the dgelu epilogue");
    epilogue = CUBLASLT_EPILOGUE_DGELU;
  }
  if (epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)), op,
          "cublasLtMatmulDescSetAttribute(EPILOGUE)");
  }
  if (s.bias) {
    const cudaDataType_t bias_type = s.d_type;
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)),
          op, "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)");
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), op,
          "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
  }
  if (s.gelu != LtShape::Gelu::none) {
    // The auxiliary matrix has D's layout and type (cuBLASLt's default aux type is D's).
    const std::int64_t aux_ld = s.ldd;
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)), op,
          "cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_LD)");
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)), op,
          "cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_POINTER)");
  }
  // Stored shapes (before op): A is m x k, or k x m when transposed; B is k x n, or n x k.
  const bool ta = s.ta != CUBLAS_OP_N, tb = s.tb != CUBLAS_OP_N;
  check(cublasLtMatrixLayoutCreate(&p.a, s.ab_type, ta ? s.k : s.m, ta ? s.m : s.k, s.lda), op,
        "cublasLtMatrixLayoutCreate(A)");
  check(cublasLtMatrixLayoutCreate(&p.b, s.ab_type, tb ? s.n : s.k, tb ? s.k : s.n, s.ldb), op,
        "cublasLtMatrixLayoutCreate(B)");
  check(cublasLtMatrixLayoutCreate(&p.d, s.d_type, s.m, s.n, s.ldd), op, "cublasLtMatrixLayoutCreate(D)");

  cublasLtMatmulPreference_t pref = nullptr;
  check(cublasLtMatmulPreferenceCreate(&pref), op, "cublasLtMatmulPreferenceCreate");
  const std::size_t ws = workspace_bytes_;
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)), op,
        "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
  const std::uint32_t align_a = std::get<1>(key), align_b = std::get<2>(key), align_d = std::get<3>(key);
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a)),
        op, "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_A_BYTES)");
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b)),
        op, "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_B_BYTES)");
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_d, sizeof(align_d)),
        op, "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_C_BYTES)");
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_d, sizeof(align_d)),
        op, "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_D_BYTES)");
  if (deterministic_) {
    // No split-K: every output element is one dot product in a fixed order.
    const std::uint32_t mask = CUBLASLT_REDUCTION_SCHEME_NONE;
    check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof(mask)),
          op, "cublasLtMatmulPreferenceSetAttribute(REDUCTION_SCHEME_MASK)");
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  check(status, op, "cublasLtMatmulAlgoGetHeuristic");
  if (found == 0) {
    throw std::runtime_error(std::string("cuda backend: ") + op + ": cuBLASLt has no algorithm for m=" +
                             std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k));
  }
  p.algo = result.algo;
  return plans_.emplace(key, p).first->second;
}

void LtMatmul::run(const char* op, const LtShape& s, const void* A, const void* B, void* D, const void* bias,
                   float alpha, void* aux, const void* C) {
  if (C && !s.accumulate) throw std::logic_error(std::string("cuda backend: ") + op + ": a C matrix needs accumulate");
  const void* c = C ? C : D;
  const Key key{s.key(), alignment(A), alignment(B), std::min(alignment(D), alignment(c))};
  Plan& p = plan(op, s, key, bias, aux);
  if (s.bias) {
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), op,
          "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
  }
  if (s.gelu != LtShape::Gelu::none) {
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)), op,
          "cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_POINTER)");
  }
  const float beta = s.accumulate ? 1.0f : 0.0f;
  check(cublasLtMatmul(handle_, p.desc, &alpha, A, p.a, B, p.b, &beta, c, p.d, D, p.d, &p.algo, workspace_,
                       workspace_bytes_, stream_),
        op, "cublasLtMatmul");
}

}  // namespace trainer::gpu
