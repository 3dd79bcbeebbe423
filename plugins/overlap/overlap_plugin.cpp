// Overlap policies, read by the layout:
//   none      all gradient communication after backward (the baseline to compare against)
//   bucketed  gradients packed into buckets of bucket_mb, each launched as soon as its last
//             gradient exists, while backward continues
//   prefetch  bucketed, and sharded parameters (fsdp) gathered `depth` blocks ahead
#include "trainer/layout.hpp"

namespace {

class Overlap final : public trainer::OverlapPolicy {
 public:
  explicit Overlap(trainer::OverlapPlan plan) : plan_(plan) {}
  trainer::OverlapPlan plan() const override { return plan_; }

 private:
  trainer::OverlapPlan plan_;
};

#if defined(OVERLAP_NONE)
constexpr const char* kName = "none";
constexpr const char* kSummary = "all gradient communication after backward";
std::vector<trainer::KeySpec> keys() { return {}; }
trainer::OverlapPlan make(const trainer::ConfigNode&) { return {}; }
#else
std::size_t megabytes(double mb) { return static_cast<std::size_t>(mb * 1024.0 * 1024.0); }
#endif

#if defined(OVERLAP_NONE)
#elif defined(OVERLAP_BUCKETED)
constexpr const char* kName = "bucketed";
constexpr const char* kSummary = "gradient buckets reduced during backward";
std::vector<trainer::KeySpec> keys() {
  return {{"bucket_mb", trainer::KeyType::number, "25", "bucket size in MiB", false, 0.0, 4096.0, {}}};
}
trainer::OverlapPlan make(const trainer::ConfigNode& c) {
  return {true, megabytes(c.get_double("bucket_mb")), 0};
}
#elif defined(OVERLAP_PREFETCH)
constexpr const char* kName = "prefetch";
constexpr const char* kSummary = "bucketed reduction, and sharded parameters gathered ahead of use";
std::vector<trainer::KeySpec> keys() {
  return {{"bucket_mb", trainer::KeyType::number, "25", "bucket size in MiB", false, 0.0, 4096.0, {}},
          {"depth", trainer::KeyType::integer, "1", "blocks gathered ahead of the one computing", false, 1, 64, {}}};
}
trainer::OverlapPlan make(const trainer::ConfigNode& c) {
  return {true, megabytes(c.get_double("bucket_mb")), static_cast<int>(c.get_int("depth"))};
}
#else
#error "define one OVERLAP_<MODE>"
#endif

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
  return std::make_unique<Overlap>(make(ctx.config));
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::overlap, kName, "0.1.0",
                                            kSummary, &create, &keys};

}  // namespace

TRAINER_PLUGIN(kDescriptor)
