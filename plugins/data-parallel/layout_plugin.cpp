// The descriptor of one of the four data-parallel layouts; CMake builds this file four
// times, once per DATA_PARALLEL_<MODE> definition.
#include "data_parallel.hpp"
#include "trainer/plugin.hpp"

namespace data_parallel {
namespace {

#if defined(DATA_PARALLEL_REPLICATE)
constexpr Sharding kSharding = Sharding::replicate;
constexpr const char* kName = "replicate";
constexpr const char* kSummary = "every rank holds all state; gradients all-reduced";
#elif defined(DATA_PARALLEL_ZERO1)
constexpr Sharding kSharding = Sharding::zero1;
constexpr const char* kName = "zero1";
constexpr const char* kSummary = "optimizer state sharded over dp; parameters all-gathered after the update";
#elif defined(DATA_PARALLEL_ZERO2)
constexpr Sharding kSharding = Sharding::zero2;
constexpr const char* kName = "zero2";
constexpr const char* kSummary = "optimizer state and gradients sharded over dp (reduce-scatter)";
#elif defined(DATA_PARALLEL_FSDP)
constexpr Sharding kSharding = Sharding::fsdp;
constexpr const char* kName = "fsdp";
constexpr const char* kSummary = "parameters, gradients and optimizer state sharded; blocks gathered before use";
#else
#error "define one DATA_PARALLEL_<MODE>"
#endif

std::vector<trainer::KeySpec> keys() { return {}; }
std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext&) {
  return std::make_unique<DataParallelLayout>(kSharding);
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::layout, kName, "0.1.0",
                                            kSummary, &create, &keys};

}  // namespace
}  // namespace data_parallel

TRAINER_PLUGIN(data_parallel::kDescriptor)
