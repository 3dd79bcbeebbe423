// The descriptor of one of the three pipeline schedules; CMake builds this file three
// times, once per PIPELINE_SCHEDULE_<MODE> definition.
#include <memory>
#include <string>
#include <vector>

#include "schedules.hpp"
#include "trainer/pipeline.hpp"
#include "trainer/plugin.hpp"

namespace pipeline_schedules {
namespace {

#if defined(PIPELINE_SCHEDULE_GPIPE)
constexpr const char* kName = "gpipe";
constexpr const char* kSummary = "all forwards, then all backwards: every micro-batch's activations held";
#elif defined(PIPELINE_SCHEDULE_1F1B)
constexpr const char* kName = "1f1b";
constexpr const char* kSummary = "one forward, one backward: at most pp micro-batches in flight per stage";
#elif defined(PIPELINE_SCHEDULE_INTERLEAVED)
constexpr const char* kName = "interleaved";
constexpr const char* kSummary = "1f1b over virtual_stages chunks per rank: the bubble divided by virtual_stages";
#else
#error "define one PIPELINE_SCHEDULE_<MODE>"
#endif

class Scheduler final : public trainer::PipelineScheduler {
 public:
  explicit Scheduler(int virtual_stages) : virtual_stages_(virtual_stages) {}
  int virtual_stages() const override { return virtual_stages_; }

  std::string check(int stages, int micro_batches) const override {
#if defined(PIPELINE_SCHEDULE_GPIPE)
    (void)stages;
    (void)micro_batches;
    return {};
#else
    // Fewer micro-batches than stages leaves ranks with no steady phase: the schedule
    // degenerates to gpipe with a larger bubble. Refused so the choice is explicit.
    if (micro_batches < stages) {
      return std::string(kName) + " needs at least pp = " + std::to_string(stages) +
             " micro-batches per step, but global_batch / (dp × micro_batch) is " + std::to_string(micro_batches);
    }
#if defined(PIPELINE_SCHEDULE_INTERLEAVED)
    if (micro_batches % stages != 0) {
      return "interleaved runs micro-batches in groups of pp = " + std::to_string(stages) +
             ", but global_batch / (dp × micro_batch) is " + std::to_string(micro_batches) +
             ", not a multiple of it";
    }
#endif
    return {};
#endif
  }

  trainer::PipelineSchedule build(int stages, int micro_batches) const override {
#if defined(PIPELINE_SCHEDULE_GPIPE)
    return gpipe(stages, micro_batches);
#elif defined(PIPELINE_SCHEDULE_1F1B)
    return one_f_one_b(stages, micro_batches);
#else
    return interleaved(stages, virtual_stages_, micro_batches);
#endif
  }

 private:
  int virtual_stages_;
};

std::vector<trainer::KeySpec> keys() {
#if defined(PIPELINE_SCHEDULE_INTERLEAVED)
  return {{"virtual_stages", trainer::KeyType::integer, "2",
           "model chunks per pipeline rank; model blocks must be at least pp × virtual_stages", false, 2.0, 64.0, {}}};
#else
  return {};
#endif
}

std::unique_ptr<trainer::Plugin> create(const trainer::PluginContext& ctx) {
#if defined(PIPELINE_SCHEDULE_INTERLEAVED)
  return std::make_unique<Scheduler>(static_cast<int>(ctx.config.get_int("virtual_stages")));
#else
  (void)ctx;
  return std::make_unique<Scheduler>(1);
#endif
}

const trainer::PluginDescriptor kDescriptor{trainer::kAbiVersion, trainer::PluginKind::schedule, kName, "0.1.0",
                                            kSummary, &create, &keys};

}  // namespace
}  // namespace pipeline_schedules

TRAINER_PLUGIN(pipeline_schedules::kDescriptor)
