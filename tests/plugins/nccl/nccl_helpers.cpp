#include "nccl_helpers.hpp"

#include <cmath>
#include <exception>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

namespace nccl_test {

std::vector<Rank> make_ranks(int world, const std::map<std::string, std::string>& comm_overrides) {
  std::vector<Rank> ranks;
  for (int r = 0; r < world; ++r) {
    Rank rank;
    try {
      rank.backend = trainer::test::make_plugin<trainer::Backend>(trainer::PluginKind::backend, "cuda",
                                                                  {{"device", std::to_string(r)}});
    } catch (const std::runtime_error& e) {
      // Only "no GPU" / "too few GPUs" skip; any other failure is the test's.
      const std::string what = e.what();
      if (what.find("no CUDA device is visible") == std::string::npos &&
          what.find("CUDA device(s) are visible") == std::string::npos) {
        throw;
      }
      WARN("nccl tests need " << world << " GPUs: skipped (" << what << ")");
      return {};
    }
    rank.comm = trainer::test::make_plugin<trainer::CommBackend>(trainer::PluginKind::comm, "nccl", comm_overrides,
                                                                 rank.backend.object.get());
    ranks.push_back(std::move(rank));
  }
  return ranks;
}

trainer::GroupSpec group(const std::string& name, int world, int global_rank, std::chrono::milliseconds timeout) {
  trainer::GroupSpec spec;
  spec.name = name;
  for (int r = 0; r < world; ++r) spec.ranks.push_back(r);
  spec.global_rank = global_rank;
  spec.timeout = timeout;
  return spec;
}

trainer::Tensor to_device(trainer::Backend& be, trainer::DType dtype, const void* data, std::int64_t numel) {
  auto t = be.allocate({numel}, dtype);
  if (numel > 0) be.copy_from_host(t, data);
  return t;
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-12, 12);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(mantissa(rng), exponent(rng));
  return v;
}

}  // namespace nccl_test
