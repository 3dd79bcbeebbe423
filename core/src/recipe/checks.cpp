#include "recipe/checks.hpp"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "recipe/schema.hpp"

namespace trainer::recipe {
namespace {

ConfigNode* find(ConfigNode& root, std::initializer_list<std::string_view> path) {
  ConfigNode* node = &root;
  for (auto key : path) {
    if (!node->is_map() || !node->has(key)) return nullptr;
    node = &(*node)[key];
  }
  return node;
}

const KeySpec* spec_at(std::initializer_list<std::string_view> path) {
  const SectionSchema* section = &trainer_schema();
  const KeySpec* spec = nullptr;
  for (auto key : path) {
    if (!section) return nullptr;
    spec = section->find_key(key);
    section = section->find_section(key);
  }
  return spec;
}

// The value at `path` if the schema accepted it (type and range), else nullopt: the
// schema has reported it already and a cross-field error about it would be noise.
template <typename T>
std::optional<T> accepted(ConfigNode& recipe, std::initializer_list<std::string_view> path) {
  const ConfigNode* node = find(recipe, path);
  if (!node || !node->is_scalar()) return std::nullopt;
  T value{};
  try {
    if constexpr (std::is_integral_v<T>) {
      value = node->as_int();
    } else {
      value = node->as_double();
    }
  } catch (const ConfigError&) {
    return std::nullopt;
  }
  if (const KeySpec* spec = spec_at(path)) {
    if (spec->min && static_cast<double>(value) < *spec->min) return std::nullopt;
    if (spec->max && static_cast<double>(value) > *spec->max) return std::nullopt;
  }
  return value;
}

std::string batch_hint(std::int64_t global, std::int64_t micro, std::int64_t dp) {
  const std::int64_t unit = micro * dp;
  const std::int64_t lower = global / unit * unit;
  std::string hint = lower > 0 ? fmt::format("set global_batch to {} or {}", lower, lower + unit)
                               : fmt::format("set global_batch to {}", unit);
  if (global % dp == 0) {
    // The largest micro_batch not above the current one that divides the per-rank batch.
    const std::int64_t per_rank = global / dp;
    for (std::int64_t m = std::min(micro, per_rank); m >= 1; --m) {
      if (per_rank % m == 0) {
        hint += fmt::format(", or micro_batch to {}", m);
        break;
      }
    }
  }
  return hint;
}

// Pipeline parallel: what it does not combine with yet. The block count and the number of
// micro-batches a schedule needs are checked when the model and schedule exist (Trainer).
void check_pipeline(ConfigNode& recipe, std::int64_t pp, std::vector<Diagnostic>& out) {
  const auto refuse = [&](std::initializer_list<std::string_view> path, std::string_view value, const char* what,
                          const char* fix) {
    const ConfigNode* n = find(recipe, path);
    if (n && n->is_scalar() && n->text() == value) {
      out.push_back({n->origin(), fmt::format("parallel.pp {}: {} is not available with pipeline parallel yet", pp, what),
                     fix});
    }
  };
  refuse({"output", "final_parameters"}, "true", "output.final_parameters",
         "set output.final_parameters: false (the summary's final_param_l2/sum cover every stage)");
}

// The mesh: dp × tp × pp must equal the world (launch.nproc × launch.nnodes); `dp: auto`
// takes the rest. Writes the resolved integer back into parallel.dp and returns it.
std::optional<std::int64_t> resolve_mesh(ConfigNode& recipe, std::vector<Diagnostic>& out) {
  ConfigNode* dp_node = find(recipe, {"parallel", "dp"});
  const auto nproc = accepted<std::int64_t>(recipe, {"launch", "nproc"});
  const auto nnodes = accepted<std::int64_t>(recipe, {"launch", "nnodes"});
  const auto tp = accepted<std::int64_t>(recipe, {"parallel", "tp"});
  const auto pp = accepted<std::int64_t>(recipe, {"parallel", "pp"});
  if (!dp_node || !dp_node->is_scalar() || !nproc || !nnodes || !tp || !pp) return std::nullopt;
  if (*pp > 1) check_pipeline(recipe, *pp, out);
  const std::int64_t world = *nproc * *nnodes, model = *tp * *pp;
  std::int64_t dp = 0;
  if (dp_node->text() == "auto") {
    if (world % model != 0) {
      out.push_back({dp_node->origin(),
                     fmt::format("world size {} is not divisible by tp × pp = {}", world, model), ""});
      return std::nullopt;
    }
    dp = world / model;
  } else {
    try {
      dp = dp_node->as_int();
    } catch (const ConfigError&) {
      out.push_back({dp_node->origin(), fmt::format("parallel.dp must be a positive integer or auto, found '{}'", dp_node->text()),
                     "write dp: auto to use every process"});
      return std::nullopt;
    }
    if (dp < 1 || dp * model != world) {
      out.push_back({dp_node->origin(),
                     fmt::format("dp {} × tp {} × pp {} = {} does not match the world size {} (launch.nproc {} × launch.nnodes {})",
                                 dp, *tp, *pp, dp * model, world, *nproc, *nnodes),
                     fmt::format("use dp: auto, or launch {} processes", dp * model)});
      return std::nullopt;
    }
  }
  *dp_node = ConfigNode::scalar(std::to_string(dp), dp_node->origin());
  return dp;
}

// Tensor parallel splits heads, the width (and the MLP's 4 × width) and the vocabulary
// over the tp ranks; sequence parallel splits the tokens. Model keys are the gpt plugin's.
void check_tensor_parallel(ConfigNode& recipe, std::vector<Diagnostic>& out) {
  const auto tp = accepted<std::int64_t>(recipe, {"parallel", "tp"});
  if (!tp || *tp <= 1) return;
  const auto model_int = [&](const char* key) -> std::pair<const ConfigNode*, std::optional<std::int64_t>> {
    const ConfigNode* node = find(recipe, {"model", key});
    if (!node || !node->is_scalar()) return {nullptr, std::nullopt};
    try {
      return {node, node->as_int()};
    } catch (const ConfigError&) {
      return {node, std::nullopt};  // the plugin's schema reports it
    }
  };
  const auto divisible = [&](const char* key, const char* what) {
    const auto [node, value] = model_int(key);
    if (node && value && *value % *tp != 0) {
      out.push_back({node->origin(),
                     fmt::format("model.{} {} is not divisible by parallel.tp {}: tensor parallel splits the {} "
                                 "over the tp ranks", key, *value, *tp, what),
                     fmt::format("make model.{} a multiple of {}, or change parallel.tp", key, *tp)});
    }
  };
  divisible("n_head", "attention heads");
  divisible("d_model", "width");
  divisible("vocab", "vocabulary");
  const ConfigNode* sp = find(recipe, {"parallel", "sequence_parallel"});
  if (sp && sp->is_scalar() && sp->text() == "true") {
    divisible("seq_len", "tokens of each sequence (sequence parallel)");
    const ConfigNode* dropout = find(recipe, {"model", "dropout"});
    try {
      if (dropout && dropout->is_scalar() && dropout->as_double() > 0) {
        out.push_back({dropout->origin(),
                       fmt::format("model.dropout {} with parallel.sequence_parallel: a rank's share of the "
                                   "tokens would draw other dropout masks than the whole sequence", dropout->text()),
                       "set model.dropout to 0, or parallel.sequence_parallel to false"});
      }
    } catch (const ConfigError&) {
    }
  }
}

}  // namespace

std::vector<Diagnostic> check_recipe(ConfigNode& recipe) {
  std::vector<Diagnostic> out;
  if (!recipe.is_map()) return out;

  std::optional<std::int64_t> dp = resolve_mesh(recipe, out);
  check_tensor_parallel(recipe, out);
  const std::optional<std::int64_t> micro = accepted<std::int64_t>(recipe, {"train", "micro_batch"});
  ConfigNode* train = find(recipe, {"train"});
  if (train && train->is_map() && !train->has("global_batch") && micro && dp) {
    (*train)["global_batch"] = ConfigNode::scalar(std::to_string(*micro * *dp), default_origin());
  }
  const ConfigNode* global_node = find(recipe, {"train", "global_batch"});
  const std::optional<std::int64_t> global = accepted<std::int64_t>(recipe, {"train", "global_batch"});
  if (global && micro && dp && *global % (*micro * *dp) != 0) {
    out.push_back({global_node->origin(),
                   fmt::format("global_batch {} is not a multiple of micro_batch {} × "
                               "data-parallel degree {}",
                               *global, *micro, *dp),
                   batch_hint(*global, *micro, *dp)});
  }

  const ConfigNode* lr_node = find(recipe, {"optimizer", "lr"});
  const ConfigNode* min_lr_node = find(recipe, {"optimizer", "min_lr"});
  const auto lr = accepted<double>(recipe, {"optimizer", "lr"});
  const auto min_lr = accepted<double>(recipe, {"optimizer", "min_lr"});
  if (lr && min_lr && *min_lr > *lr) {
    out.push_back({min_lr_node->origin(),
                   fmt::format("optimizer.min_lr {} is greater than optimizer.lr {}",
                               min_lr_node->text(), lr_node->text()),
                   "the learning rate decays from lr down to min_lr"});
  }

  const ConfigNode* warmup_node = find(recipe, {"optimizer", "warmup_steps"});
  const ConfigNode* steps_node = find(recipe, {"train", "steps"});
  const auto warmup = accepted<std::int64_t>(recipe, {"optimizer", "warmup_steps"});
  const auto steps = accepted<std::int64_t>(recipe, {"train", "steps"});
  if (warmup && steps && *warmup > *steps) {
    out.push_back({warmup_node->origin(),
                   fmt::format("optimizer.warmup_steps {} exceeds train.steps {}",
                               warmup_node->text(), steps_node->text()),
                   "warmup has to end within the run"});
  }

  // A heartbeat timeout shorter than two intervals would call a healthy worker dead.
  const auto beat = accepted<double>(recipe, {"watchdog", "heartbeat_interval_s"});
  const auto beat_timeout = accepted<double>(recipe, {"watchdog", "heartbeat_timeout_s"});
  if (beat && beat_timeout && *beat_timeout < 2 * *beat) {
    const ConfigNode* node = find(recipe, {"watchdog", "heartbeat_timeout_s"});
    out.push_back({node->origin(),
                   fmt::format("watchdog.heartbeat_timeout_s {} is less than 2 x heartbeat_interval_s ({})",
                               node->text(), find(recipe, {"watchdog", "heartbeat_interval_s"})->text()),
                   "a worker is declared lost after missing about two heartbeats at the least"});
  }

  // Injected faults must hit a rank of this job and a step of this run.
  const ConfigNode* faults = find(recipe, {"faults"});
  const auto nproc = accepted<std::int64_t>(recipe, {"launch", "nproc"});
  const auto nnodes = accepted<std::int64_t>(recipe, {"launch", "nnodes"});
  if (faults && faults->is_list()) {
    for (std::size_t i = 0; i < faults->items().size(); ++i) {
      const ConfigNode& fault = faults->items()[i];
      if (!fault.is_map()) continue;
      const auto integer = [&](const char* key) -> std::optional<std::int64_t> {
        if (!fault.has(key) || !fault.at(key).is_scalar()) return std::nullopt;
        try {
          return fault.at(key).as_int();
        } catch (const ConfigError&) {
          return std::nullopt;  // reported by the schema
        }
      };
      const auto rank = integer("rank");
      if (rank && nproc && nnodes && *rank >= *nproc * *nnodes) {
        out.push_back({fault.at("rank").origin(),
                       fmt::format("faults[{}].rank {} is not a rank of this job (world size {})", i, *rank,
                                   *nproc * *nnodes),
                       fmt::format("ranks are 0 to {}", *nproc * *nnodes - 1)});
      }
      const auto step = integer("step");
      if (step && steps && *step > *steps) {
        out.push_back({fault.at("step").origin(),
                       fmt::format("faults[{}].step {} is after the last step (train.steps {})", i, *step, *steps),
                       "steps are counted from 1, as logged"});
      }
      const ConfigNode* layout_name = find(recipe, {"layout", "plugin"});
      if (fault.has("kind") && fault.at("kind").is_scalar() && fault.at("kind").text() == "bitflip" && layout_name &&
          layout_name->is_scalar() && layout_name->text() == "fsdp") {
        out.push_back({fault.at("kind").origin(),
                       fmt::format("faults[{}]: a bitflip corrupts one data-parallel replica, but layout fsdp "
                                   "keeps no replicas (each rank holds only its shard)", i),
                       "use layout replicate, zero1 or zero2 to test the replica check"});
      }
      // Checkpoint faults need checkpoints; kill_during_save needs a save after its step.
      const std::string kind = fault.has("kind") && fault.at("kind").is_scalar() ? fault.at("kind").text() : "";
      const auto save_every = accepted<std::int64_t>(recipe, {"checkpoint", "every"});
      if ((kind == "corrupt" || kind == "kill_during_save") && save_every && *save_every == 0) {
        out.push_back({fault.at("kind").origin(),
                       fmt::format("faults[{}]: a {} fault needs checkpoints, but checkpoint.every is 0", i, kind),
                       "set checkpoint.every"});
      } else if (kind == "kill_during_save" && save_every && step && steps && *step % *save_every != 0 &&
                 *step != *steps) {
        out.push_back({fault.at("step").origin(),
                       fmt::format("faults[{}]: no checkpoint is saved after step {} (checkpoint.every {})", i,
                                   *step, *save_every),
                       fmt::format("use a multiple of {}, or the last step {}", *save_every, *steps)});
      }
    }
  }

  // A rollback needs a checkpoint to go back to; a spike is a loss above its running mean.
  const auto every = accepted<std::int64_t>(recipe, {"checkpoint", "every"});
  const auto action = [&](const char* key) -> const ConfigNode* {
    const ConfigNode* node = find(recipe, {"health", key});
    return node && node->is_scalar() && node->text() == "rollback" ? node : nullptr;
  };
  const auto sdc_every = accepted<std::int64_t>(recipe, {"health", "sdc_check_every"});
  const auto spike_ratio = accepted<double>(recipe, {"health", "spike_ratio"});
  for (const auto& [key, on] : {std::pair{"on_sdc", sdc_every && *sdc_every > 0},
                                std::pair{"on_nonfinite", true},
                                std::pair{"on_spike", spike_ratio && *spike_ratio > 0}}) {
    const ConfigNode* node = action(key);
    if (node && on && every && *every == 0) {
      out.push_back({node->origin(), fmt::format("health.{} is rollback but checkpoint.every is 0: there is no "
                                                 "checkpoint to roll back to", key),
                     fmt::format("set checkpoint.every, or health.{}: {}", key,
                                 std::string_view(key) == "on_sdc" ? "abort" : "skip")});
    }
  }
  if (spike_ratio && *spike_ratio > 0 && *spike_ratio <= 1) {
    out.push_back({find(recipe, {"health", "spike_ratio"})->origin(),
                   fmt::format("health.spike_ratio {} would call an ordinary step a spike", *spike_ratio),
                   "a spike is a loss above its running mean: use a ratio above 1 (e.g. 2), or 0 to turn it off"});
  }

  const ConfigNode* precision = find(recipe, {"precision"});
  const ConfigNode* backend = find(recipe, {"backend", "plugin"});
  if (precision && precision->is_scalar() && precision->text() == "bf16" && backend &&
      backend->is_scalar() && backend->text() != "cuda") {
    out.push_back({precision->origin(),
                   fmt::format("precision bf16 requires the cuda backend, but backend is '{}'",
                               backend->text()),
                   fmt::format("use precision: f32 on the {} backend, or backend: cuda",
                               backend->text())});
  }
  return out;
}

}  // namespace trainer::recipe
