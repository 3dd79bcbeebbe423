#include "pipeline/pipeline_setup.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <string>

#include "engine/components.hpp"
#include "pipeline/schedule_simulation.hpp"
#include "plugin/registry.hpp"

namespace trainer::pipeline {

PipelineSetup make_pipeline(const ConfigNode& recipe, const std::vector<ParameterSpec>& specs, int blocks, int stages,
                            int micro_batches) {
  PipelineSetup s;
  const ConfigNode& pp_node = recipe.at("parallel").at("pp");
  const ConfigNode& section = recipe.at("pipeline");
  const std::string name = section.get_string("plugin");
  const auto& descriptor = find_plugin(PluginKind::schedule, name, recipe_plugin_path(recipe));
  s.scheduler = create_plugin<PipelineScheduler>(descriptor, PluginContext{section, nullptr});
  const int v = s.scheduler->virtual_stages();
  if (blocks < stages * v) {
    throw ConfigError(pp_node.origin(),
                      fmt::format("the model has {} blocks, but parallel.pp {} × {} virtual stage(s) of pipeline '{}' "
                                  "needs at least {} (one per chunk)",
                                  blocks, stages, v, name, stages * v));
  }
  if (const std::string why = s.scheduler->check(stages, micro_batches); !why.empty()) {
    const auto& train = recipe.at("train");
    throw ConfigError(section.origin(), why + fmt::format("; raise train.global_batch (now {}) or lower "
                                                          "train.micro_batch (now {}), or use pipeline: gpipe",
                                                          train.get_int("global_batch"), train.get_int("micro_batch")));
  }
  s.schedule = s.scheduler->build(stages, micro_batches);
  if (const auto problems = check_schedule(s.schedule); !problems.empty()) {
    throw std::logic_error("pipeline schedule '" + name + "' is malformed: " + problems.front());
  }
  if (const auto t = simulate(s.schedule, unit_costs(s.schedule)); !t.completes) {
    throw std::logic_error("pipeline schedule '" + name + "' deadlocks: " + t.stuck);
  }
  const auto listed = section.at("stages").as_string_list();
  if (listed.empty()) {
    s.plan = balance_by_parameters(specs, blocks, stages * v);
  } else {
    std::vector<int> boundaries;
    for (const auto& b : listed) {
      try {
        std::size_t used = 0;
        boundaries.push_back(std::stoi(b, &used));
        if (used != b.size()) throw std::invalid_argument(b);
      } catch (const std::exception&) {
        throw ConfigError(section.at("stages").origin(), "pipeline.stages holds '" + b + "', not a block index");
      }
    }
    try {
      s.plan = explicit_plan(boundaries, blocks, stages * v);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(section.at("stages").origin(), e.what());
    }
  }
  // The SDK cannot say which embedding parameters a head reuses; the gpt convention is the
  // `tied_embeddings` key (default true). An untied model's last stage holds no embedding.
  const ConfigNode& model = recipe.at("model");
  s.tied_head = !model.has("tied_embeddings") || model.get_bool("tied_embeddings");
  return s;
}

}  // namespace trainer::pipeline
