// DataParallelLayout: the data-parallel axis in four degrees of sharding.
//   replicate  every rank holds everything; gradients all-reduced
//   zero1      optimizer state sharded: each rank updates its shard, then parameters all-gathered
//   zero2      gradients reduce-scattered into shards as well
//   fsdp       parameters sharded too: each unit is gathered before use and freed after
// Units (one per block, plus the embedding/head units) are the grain of every operation.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "trainer/layout.hpp"
#include "unit_shards.hpp"

namespace data_parallel {

enum class Sharding { replicate, zero1, zero2, fsdp };

class DataParallelLayout final : public trainer::Layout {
 public:
  explicit DataParallelLayout(Sharding sharding) : sharding_(sharding) {}
  ~DataParallelLayout() override;

  void setup(const trainer::LayoutContext& ctx) override;
  std::vector<trainer::OptimizerTarget> optimizer_targets() override;
  void begin_micro_batch(bool training) override;
  void before_forward(int block) override;
  void after_forward(int block) override;
  void before_backward(int block) override;
  void after_backward(int block, bool last_micro) override;
  void end_micro_batch(bool training, bool last_micro) override;
  double grad_sum_squares() override;
  void grad_sum_squares_on_device(const trainer::Tensor& out, trainer::Backend& backend) override;
  void scale_grads(float factor) override;
  void after_optimizer_step() override;
  void zero_grads() override;
  trainer::CommTimes take_comm_times() override;
  std::size_t parameter_bytes() const override;
  std::size_t gradient_bytes() const override;
  std::size_t staging_bytes() const override { return peak_staging_bytes_; }

 private:
  struct Pending {
    std::unique_ptr<trainer::CommWork> work;
    std::function<void()> on_done;
  };
  // An operation waited for on the device (wait_on_device): its busy and exposed times are
  // read once it is done, at take_comm_times (after the step's host read), with the time the
  // host spent in the wait as the exposed time of a plugin that does not measure its own.
  struct Waited {
    std::unique_ptr<trainer::CommWork> work;
    double host_wait_s = 0;
  };
  void wait_on_device(std::unique_ptr<trainer::CommWork> work);
  bool shards_grads() const { return sharding_ == Sharding::zero2 || sharding_ == Sharding::fsdp; }
  const std::vector<std::size_t>& units_of(int block) const;
  trainer::Tensor staging(const trainer::Shape& shape);
  void drop_staging(trainer::Tensor& t);
  std::vector<trainer::SquaresTerm> squares_terms() const;
  void launch(std::unique_ptr<trainer::CommWork> work, std::function<void()> on_done);
  void wait_all();
  // Gradients of `units` are complete for this micro-batch.
  void grads_ready(const std::vector<std::size_t>& units, bool last_micro);
  void flush_all_reduce_bucket();
  void reduce_scatter_unit(std::size_t u);
  // fsdp: make unit values present (issue_gather) and wait for them (require_values).
  void issue_gather(std::size_t u);
  void require_values(std::size_t u);
  void release_values(std::size_t u);
  void all_gather_updated(std::size_t u);

  Sharding sharding_;
  trainer::Backend* be_ = nullptr;
  trainer::ParameterStore* params_ = nullptr;
  trainer::Communicator* comm_ = nullptr;
  trainer::OverlapPlan plan_;
  int ranks_ = 1, rank_ = 0;
  std::vector<UnitShard> shards_;
  std::map<int, std::vector<std::size_t>> units_by_block_;
  std::vector<trainer::Tensor> value_shards_, grad_shards_;  // per unit, when sharded
  std::vector<trainer::Tensor> gathering_;                   // fsdp: per unit, gather in flight
  std::map<std::size_t, std::unique_ptr<trainer::CommWork>> pending_gathers_;
  std::vector<std::size_t> bucket_units_;                    // all-reduce bucket being filled
  std::size_t bucket_bytes_now_ = 0;
  std::vector<Pending> pending_;
  std::vector<Waited> waited_;
  std::size_t staging_bytes_ = 0, peak_staging_bytes_ = 0;
  trainer::CommTimes times_;
};

}  // namespace data_parallel
