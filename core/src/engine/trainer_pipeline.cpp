// Trainer's pipeline-parallel parts: the schedule and stage plan from the recipe, this
// rank's share of the parameters, one step's micro-batches through the executor, and the
// measured bubble against the predicted one in the run log.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/trainer.hpp"
#include "pipeline/pipeline_setup.hpp"
#include "pipeline/schedule_simulation.hpp"
#include "pipeline/step_replay.hpp"

namespace trainer {

std::vector<ParameterSpec> Trainer::pipeline_parameters(std::vector<ParameterSpec> all) {
  const int pp = mesh_.size(Axis::pp);
  if (pp == 1) return all;
  auto setup = pipeline::make_pipeline(recipe_, all, components_.model->num_blocks(), pp, static_cast<int>(accum_));
  scheduler_ = std::move(setup.scheduler);
  pp_schedule_ = std::move(setup.schedule);
  pp_plan_ = std::move(setup.plan);
  pp_tied_ = setup.tied_head;
  return pipeline::stage_parameters(all, pp_plan_, pp_schedule_, coords_.pp, pp_tied_);
}

void Trainer::setup_pipeline() {
  if (!scheduler_) return;
  pipeline_ = std::make_unique<PipelineExecutor>(*components_.backend, *components_.model, *components_.recompute,
                                                 *components_.layout, shape_, pp_schedule_, pp_plan_, *pp_, *params_,
                                                 pp_tied_);
  pp_measured_.assign(static_cast<std::size_t>(mesh_.size(Axis::pp)), PipelineFigures{});
}

double Trainer::pipeline_micro_batches(float dloss) {
  const std::size_t n = static_cast<std::size_t>(shape_.B) * static_cast<std::size_t>(shape_.T);
  std::vector<std::int32_t> inputs(n), targets(n);
  const PipelineExecutor::MicroBatchSource source = [&](int m, const Tensor& tokens, const Tensor& target_tensor) {
    // The same global sample positions and dropout keys as the unpipelined loop.
    const std::int64_t global_micro = static_cast<std::int64_t>(m) * dp_size_ + dp_rank_;
    sampler_->fill_micro_batch(step_, global_micro * shape_.B, shape_.B, inputs, targets);
    components_.backend->copy_from_host(tokens, inputs.data());
    components_.backend->copy_from_host(target_tensor, targets.data());
    return StepContext{seed_, step_, static_cast<int>(global_micro), true};
  };
  return pipeline_->train(source, dloss);
}

double Trainer::pipeline_grad_sum_squares() {
  auto& layout = *components_.layout;
  auto& backend = *components_.backend;
  // The stage's squared norm in one device reduction and one read (not one read per unit).
  Tensor on_device = backend.allocate({1}, DType::f64);
  layout.grad_sum_squares_on_device(on_device, backend);
  double stage = 0;
  backend.copy_to_host(&stage, on_device);
  const double duplicate = pipeline_->duplicate_grad_sum_squares(layout.optimizer_targets(), dp_.get());
  return pipeline_->sum_over_stages(stage - duplicate);
}

void Trainer::pipeline_parameter_sums(const std::vector<float>& values, double& sum_squares, double& sum) {
  sum_squares = 0;
  sum = 0;
  for (std::size_t i = 0; i < params_->size(); ++i) {
    if (pipeline_->is_duplicate(i)) continue;
    // Tensor parallel: shards add up over the tp group; a parameter every tp rank holds
    // whole counts its grad_norm_share (1/tp) on each, so once in all.
    const double share = params_->spec(i).grad_norm_share;
    const auto at = static_cast<std::size_t>(params_->offset(i));
    const auto count = static_cast<std::size_t>(shape_numel(params_->spec(i).shape));
    for (std::size_t j = at; j < at + count; ++j) {
      sum_squares += share * static_cast<double>(values[j]) * values[j];
      sum += share * values[j];
    }
  }
  sum_squares = pipeline_->sum_over_stages(sum_squares);
  sum = pipeline_->sum_over_stages(sum);
  if (tp_) {
    float host[2] = {static_cast<float>(sum_squares), static_cast<float>(sum)};
    Tensor t = components_.backend->allocate({2}, DType::f32);
    components_.backend->copy_from_host(t, host);
    tp_->all_reduce(t)->wait();
    components_.backend->copy_to_host(host, t);
    sum_squares = host[0];
    sum = host[1];
  }
}

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

// Every rank of the pp group takes part (an all-gather); rank 0 writes its replica's figures.
void Trainer::log_pipeline_step(RunLog& log) {
  const auto& t = pipeline_->last_step();
  const int P = pp_schedule_.stages;
  std::size_t longest = 0;
  for (const auto& list : pp_schedule_.ranks) longest = std::max(longest, list.size());
  // Per stage: span, compute, receive wait, in flight, start, then took, computing, at and
  // asked for each action of its list (padded to the longest list).
  const std::size_t L = longest, K = 5 + 4 * L;
  std::vector<float> mine(K, -1.0f);
  mine[0] = static_cast<float>(t.span_s);
  mine[1] = static_cast<float>(t.compute_s);
  mine[2] = static_cast<float>(t.recv_wait_s);
  mine[3] = static_cast<float>(t.peak_in_flight);
  mine[4] = static_cast<float>(t.start_s);
  const std::vector<double>* per_action[] = {&t.took_s, &t.computing_s, &t.at_s, &t.asked_s};
  for (std::size_t k = 0; k < 4; ++k) {
    for (std::size_t i = 0; i < per_action[k]->size() && i < L; ++i) mine[5 + k * L + i] = static_cast<float>((*per_action[k])[i]);
  }
  auto& be = *components_.backend;
  const auto n = static_cast<std::int64_t>(K);
  Tensor in = be.allocate({n}, DType::f32), out = be.allocate({n * P}, DType::f32);
  be.copy_from_host(in, mine.data());
  pp_->all_gather(out, in)->wait();
  std::vector<float> all(K * static_cast<std::size_t>(P));
  be.copy_to_host(all.data(), out);

  pipeline::MeasuredStep step;
  for (int r = 0; r < P; ++r) {
    const float* f = all.data() + static_cast<std::ptrdiff_t>(r) * static_cast<std::ptrdiff_t>(K);
    const std::size_t len = pp_schedule_.ranks[static_cast<std::size_t>(r)].size();
    step.span.push_back(f[0]);
    step.compute.push_back(f[1]);
    step.start.push_back(f[4]);
    const auto column = [&](std::size_t k) { return std::vector<double>(f + 5 + k * L, f + 5 + k * L + len); };
    step.took.push_back(column(0));
    step.computing.push_back(column(1));
    step.at.push_back(column(2));
    step.asked.push_back(column(3));
  }
  pipeline::align_clocks(pp_schedule_, step);
  const auto costs = pipeline::measured_message_costs(pp_schedule_, step);
  const auto predicted = pipeline::replay(pp_schedule_, step, costs);
  const auto compute_only = pipeline::replay(pp_schedule_, step, pipeline::MessageCosts{});
  // The first step pays one-time costs (allocation, connection warm-up): not summarised.
  if (step_ > 1) {
    pp_transfer_s_.push_back(costs.transfer);
    pp_receive_s_.push_back(costs.receive);
  }
  std::string bubbles, waits, flights, predictions;
  for (int r = 0; r < P; ++r) {
    const auto ur = static_cast<std::size_t>(r);
    const float* f = all.data() + static_cast<std::ptrdiff_t>(r) * static_cast<std::ptrdiff_t>(K);
    auto& m = pp_measured_[ur];
    const double bubble = step.bubble(ur);
    if (step_ > 1) {
      m.bubble.push_back(bubble);
      m.predicted.push_back(predicted.bubble[ur]);
      m.compute_only.push_back(compute_only.bubble[ur]);
    }
    m.peak_in_flight = std::max(m.peak_in_flight, static_cast<int>(f[3]));
    const char* sep = r == 0 ? "" : ",";
    bubbles += fmt::format("{}{:.4f}", sep, bubble);
    waits += fmt::format("{}{:.3f}", sep, 1000.0 * f[2]);
    flights += fmt::format("{}{}", sep, static_cast<int>(f[3]));
    predictions += fmt::format("{}{:.4f}", sep, predicted.bubble[ur]);
  }
  log.json({{"event", "\"pipeline_step\""}, {"step", std::to_string(step_)},
            {"bubble", "[" + bubbles + "]"}, {"recv_wait_ms", "[" + waits + "]"}, {"in_flight", "[" + flights + "]"},
            {"bubble_predicted", "[" + predictions + "]"},
            {"transfer_ms", fmt::format("{:.4f}", 1000.0 * costs.transfer)},
            {"receive_ms", fmt::format("{:.4f}", 1000.0 * costs.receive)}});
}

void Trainer::log_pipeline_summary(RunLog& log, bool console) {
  const int P = pp_schedule_.stages;
  // Predicted twice: from unit costs (forward 1, backward 2: what `trainer plan` prints) and
  // by replaying the schedule with each step's measured action times and message costs; the
  // measured and replayed bubbles are the medians over the steps after the first.
  const auto unit = pipeline::simulate(pp_schedule_, pipeline::unit_costs(pp_schedule_));
  bool measured = true;
  for (const auto& m : pp_measured_) measured = measured && !m.bubble.empty();
  std::string meas, pred_unit, pred_cal, pred_compute, flights;
  double worst = 0;
  for (int r = 0; r < P; ++r) {
    const auto& m = pp_measured_[static_cast<std::size_t>(r)];
    const double b = median(m.bubble);
    const char* sep = r == 0 ? "" : ",";
    meas += fmt::format("{}{:.4f}", sep, b);
    pred_unit += fmt::format("{}{:.4f}", sep, unit.bubble[static_cast<std::size_t>(r)]);
    if (measured) {
      const double p = median(m.predicted);
      pred_cal += fmt::format("{}{:.4f}", sep, p);
      pred_compute += fmt::format("{}{:.4f}", sep, median(m.compute_only));
      if (p > 0) worst = std::max(worst, std::abs(b - p) / p);
    }
    flights += fmt::format("{}{}", sep, m.peak_in_flight);
  }
  log.json({{"event", "\"pipeline\""}, {"schedule", RunLog::json_string(pp_schedule_.name)},
            {"pp", std::to_string(P)}, {"virtual_stages", std::to_string(pp_schedule_.virtual_stages)},
            {"micro_batches", std::to_string(pp_schedule_.micro_batches)},
            {"chunks", RunLog::json_string(pp_plan_.describe())},
            {"bubble_measured", "[" + meas + "]"}, {"bubble_predicted_unit", "[" + pred_unit + "]"},
            {"bubble_predicted_measured_costs", measured ? "[" + pred_cal + "]" : "null"},
            {"bubble_max_rel_error", measured ? fmt::format("{:.4f}", worst) : "null"},
            {"bubble_predicted_compute_only", measured ? "[" + pred_compute + "]" : "null"},
            {"transfer_ms", fmt::format("{:.4f}", measured ? 1000.0 * median(pp_transfer_s_) : 0.0)},
            {"receive_ms", fmt::format("{:.4f}", measured ? 1000.0 * median(pp_receive_s_) : 0.0)},
            {"steps_measured", std::to_string(measured ? pp_measured_[0].bubble.size() : 0)},
            {"peak_in_flight", "[" + flights + "]"}});
  if (console) {
    log.note(fmt::format("pipeline (replica 0): {} over {} stages, {} micro-batches | bubble per stage measured [{}] | "
                         "predicted [{}] (unit costs [{}]) | micro-batches in flight [{}]",
                         pp_schedule_.name, P, pp_schedule_.micro_batches, meas, measured ? pred_cal : "-", pred_unit,
                         flights));
  }
}

}  // namespace trainer
