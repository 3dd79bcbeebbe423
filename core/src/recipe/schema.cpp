#include "recipe/schema.hpp"

namespace trainer::recipe {

const KeySpec* SectionSchema::find_key(std::string_view key) const {
  for (const auto& k : keys) {
    if (k.name == key) return &k;
  }
  return nullptr;
}

const SectionSchema* SectionSchema::find_section(std::string_view key) const {
  for (const auto& s : sections) {
    if (s.name == key) return &s;
  }
  return nullptr;
}

std::vector<std::string> SectionSchema::accepted_names() const {
  std::vector<std::string> names;
  if (plugin_kind) names.emplace_back("plugin");
  for (const auto& k : keys) names.push_back(k.name);
  for (const auto& s : sections) names.push_back(s.name);
  return names;
}

SectionSchema plain_section(std::string name, std::string doc, std::vector<KeySpec> keys,
                            std::vector<SectionSchema> sections) {
  SectionSchema s;
  s.name = std::move(name);
  s.doc = std::move(doc);
  s.keys = std::move(keys);
  s.sections = std::move(sections);
  return s;
}

SectionSchema optional_section(std::string name, std::string doc, std::vector<KeySpec> keys,
                               std::vector<SectionSchema> sections) {
  SectionSchema s = plain_section(std::move(name), std::move(doc), std::move(keys),
                                  std::move(sections));
  s.optional = true;
  return s;
}

SectionSchema list_section(std::string name, std::string doc, std::vector<KeySpec> keys) {
  SectionSchema s = optional_section(std::move(name), std::move(doc), std::move(keys));
  s.list = true;
  return s;
}

SectionSchema plugin_section(std::string name, PluginKind kind, std::string default_plugin,
                             std::string doc, std::vector<KeySpec> keys) {
  SectionSchema s = plain_section(std::move(name), std::move(doc), std::move(keys));
  s.plugin_kind = kind;
  s.default_plugin = std::move(default_plugin);
  return s;
}

namespace {

SectionSchema optional_plugin_section(std::string name, PluginKind kind, std::string default_plugin, std::string doc) {
  SectionSchema s = plugin_section(std::move(name), kind, std::move(default_plugin), std::move(doc));
  s.optional = true;
  return s;
}

SectionSchema build_trainer_schema() {
  SectionSchema synth = optional_section(
      "synth", "Generate a synthetic Markov-chain corpus instead of reading token files.",
      {
          Key::integer("vocab").def("64").min(2).max(65535).doc("vocabulary size"),
          Key::integer("order").def("1").min(1).max(3).doc("Markov order of the chain"),
          Key::integer("branching").def("4").min(1).doc("successors per context"),
          Key::integer("train_tokens").def("2000000").min(1000).doc("tokens in the train split"),
          Key::integer("val_tokens").def("200000").min(1000).doc("tokens in the val split"),
          Key::integer("seed").def("1234").doc("seed of the generator"),
          Key::number("concentration").def("1.0").min(0.01)
              .doc("Dirichlet concentration of the transition weights"),
      });

  SectionSchema root;
  root.doc = "A training recipe.";
  root.keys = {
      Key::string_list("plugin_path").def("[]")
          .doc("extra folders searched for plugin libraries, before the installed ones"),
      Key::string("precision").def("f32").choices({"f32", "bf16"})
          .doc("numeric precision of the forward and backward passes"),
  };
  root.sections = {
      plugin_section("model", PluginKind::model, "gpt", "The network to train."),
      plugin_section("backend", PluginKind::backend, "cpu", "Where tensors live and compute."),
      plugin_section("optimizer", PluginKind::optimizer, "adamw",
                     "Parameter updates and the learning-rate schedule.",
                     {
                         Key::number("lr").def("6e-4").min(0).doc("peak learning rate"),
                         Key::number("min_lr").def("0").min(0)
                             .doc("learning rate at the end of the decay"),
                         Key::integer("warmup_steps").def("0").min(0)
                             .doc("steps of linear warmup from 0 to lr"),
                         Key::string("decay").def("cosine").choices({"cosine", "linear", "constant"})
                             .doc("shape of the decay from lr to min_lr after warmup"),
                     }),
      plugin_section("recompute", PluginKind::recompute, "none",
                     "Which activations are recomputed in the backward pass instead of stored."),
      plain_section("data", "The token streams to train and evaluate on.",
                    {
                        Key::string("train").required().doc("train split: a token file or folder"),
                        Key::string("val").def("\"\"")
                            .doc("validation split; empty means no evaluation"),
                    },
                    {synth}),
      plain_section("train", "The training loop.",
                    {
                        Key::integer("steps").required().min(1).doc("optimizer steps to run"),
                        Key::integer("micro_batch").def("8").min(1)
                            .doc("sequences per forward/backward pass"),
                        // Its default depends on parallel.dp; checks.cpp fills it.
                        Key::integer("global_batch").min(1)
                            .doc("sequences per optimizer step; default micro_batch x parallel.dp"),
                        Key::number("grad_clip").def("1.0").min(0)
                            .doc("clip the gradient's global norm to this; 0 turns clipping off"),
                        Key::integer("eval_every").def("100").min(1).doc("steps between evaluations"),
                        Key::integer("eval_batches").def("8").min(1)
                            .doc("micro-batches per evaluation"),
                        Key::integer("log_every").def("10").min(1).doc("steps between log lines"),
                        Key::integer("seed").def("1337").min(0)
                            .doc("seed of initialization and data order"),
                    }),
      plain_section("output", "Where the run writes its logs and checkpoints.",
                    {
                        Key::string("dir").def("runs/default").doc("output folder"),
                        Key::string("name").def("run").doc("name of the run in logs"),
                        Key::boolean("final_parameters").def("false")
                            .doc("write final_parameters.f32 (every parameter, store order, little-endian f32)"),
                    }),
      plain_section("checkpoint", "Sharded, asynchronous checkpoints and resuming from them.",
                    {
                        Key::string("dir").def("\"\"")
                            .doc("folder of the checkpoints; empty means <output.dir>/checkpoints"),
                        Key::integer("every").def("0").min(0)
                            .doc("save after every this many steps (and after the last); 0 turns saving off"),
                        Key::integer("keep").def("3").min(0)
                            .doc("committed checkpoints kept, newest first; 0 keeps all"),
                        Key::boolean("async").def("true")
                            .doc("write in the background; a step waits only for the copy to host memory"),
                        Key::string("resume").def("auto").choices({"auto", "never"})
                            .doc("auto: continue from the newest intact checkpoint in dir when there is one"),
                    }),
      plain_section("parallel", "The device mesh: world size = dp × tp × pp.",
                    {
                        Key::string("dp").def("auto")
                            .doc("data-parallel degree; auto takes what tp and pp leave"),
                        Key::integer("tp").def("1").min(1).doc("tensor-parallel degree"),
                        Key::integer("pp").def("1").min(1).doc("pipeline-parallel degree"),
                        Key::boolean("sequence_parallel").def("false")
                            .doc("with tp > 1: shard layernorm, dropout and residual regions along the tokens "
                                 "(all-gather / reduce-scatter in place of all-reduce)"),
                    }),
      plain_section("launch", "Processes: one per device, on one or more nodes.",
                    {
                        Key::integer("nproc").def("1").min(1).max(4096)
                            .doc("processes on this node (`trainer run --nproc N` sets it)"),
                        Key::integer("nnodes").def("1").min(1).max(65536)
                            .doc("nodes in the job (`--nnodes N`)"),
                    }),
      optional_plugin_section("comm", PluginKind::comm, "gloo",
                              "Collectives between ranks; filled in as gloo when the world has more than one rank."),
      plugin_section("layout", PluginKind::layout, "replicate",
                     "How parameters, gradients and optimizer state are placed over the data-parallel ranks."),
      plugin_section("overlap", PluginKind::overlap, "none",
                     "When gradient and parameter communication is issued."),
      plugin_section("pipeline", PluginKind::schedule, "1f1b",
                     "With parallel.pp > 1: the schedule of forwards, backwards, sends and receives on each "
                     "pipeline stage (`trainer plan` prints it), and where the block stack is cut.",
                     {
                         Key::string_list("stages").def("[]")
                             .doc("the first block of each pipeline chunk but the first (pp × virtual_stages - 1 "
                                  "block indices); empty: balanced by parameter count"),
                     }),
      plain_section("watchdog", "Hang and death detection: the timeout of every collective, and worker heartbeats.",
                    {
                        Key::number("collective_timeout_s").def("300").min(0.1).max(86400)
                            .doc("a collective not complete after this long aborts its rank, which dumps its "
                                 "flight record; the supervisor then diagnoses the hang"),
                        Key::number("heartbeat_interval_s").def("1").min(0.05).max(60)
                            .doc("seconds between a worker's heartbeats through the store"),
                        Key::number("heartbeat_timeout_s").def("30").min(0.2).max(3600)
                            .doc("a worker without a heartbeat for this long (counted from its start) is named and "
                                 "stopped, and the failure policy applies; at least 2 x heartbeat_interval_s"),
                    }),
      plugin_section("failure", PluginKind::failure, "abort",
                     "What happens when a worker fails, and how many non-finite steps in a row a run tolerates."),
      plain_section("health", "Checks during the run: replica checksums against silent data corruption, "
                              "non-finite and spiking losses, and what each does when it fires.",
                    {
                        Key::integer("sdc_check_every").def("0").min(0)
                            .doc("steps between comparisons of the data-parallel replicas' parameter checksums "
                                 "(also before every checkpoint save); 0 turns the check off"),
                        Key::string("on_sdc").def("rollback").choices({"rollback", "abort"})
                            .doc("replicas disagree: roll every rank back to the newest checkpoint, or abort"),
                        Key::string("on_nonfinite").def("skip").choices({"skip", "rollback"})
                            .doc("a non-finite loss or gradient: skip the update, or roll back"),
                        Key::number("spike_ratio").def("0").min(0)
                            .doc("a step whose loss exceeds this times the mean loss of the last spike_window "
                                 "good steps is a spike; 0 turns spike detection off"),
                        Key::integer("spike_window").def("20").min(1)
                            .doc("good steps the spike statistic averages; none is judged before it is full"),
                        Key::string("on_spike").def("skip").choices({"skip", "rollback"})
                            .doc("a loss spike: skip the update, or roll back"),
                    }),
      list_section("faults",
                   "Injected faults, to test a failure policy: a list of maps. They fire only in the job's "
                   "first attempt, so a restarted job does not fail again.",
                   {
                       Key::integer("step").required().min(1).doc("the step (1-based, as logged) the fault hits"),
                       Key::integer("rank").def("0").min(0).doc("the rank it hits"),
                       Key::string("kind").required().choices({"kill", "nan", "slow", "bitflip", "spike", "hang", "corrupt",
                                                             "kill_during_save"})
                           .doc("kill: SIGKILL at the start of the step; nan: a NaN in the rank's gradient "
                                "after backward; slow: a sleep before the step; bitflip: one bit of one "
                                "parameter flipped on the rank's replica before the step; spike: the rank's "
                                "loss and gradient of the step multiplied by 10 (a loss spike); hang: the rank blocks forever "
                                "before its first collective of the step; corrupt: at the start of the step, one "
                                "byte of the rank's shard of the newest committed checkpoint flipped; "
                                "kill_during_save: SIGKILL while the rank's shard of the save after the step is "
                                "half written"),
                       Key::number("seconds").def("1").min(0).doc("how long a slow fault sleeps"),
                       Key::string("attempts").def("first").choices({"first", "all"})
                           .doc("first: only in the job's first attempt; all: in every attempt (a rank that keeps "
                                "failing, for the elastic policy)"),
                   }),
  };
  return root;
}

}  // namespace

const SectionSchema& trainer_schema() {
  static const SectionSchema schema = build_trainer_schema();
  return schema;
}

void expand_plugin_shorthands(ConfigNode& node, const SectionSchema& schema) {
  if (!node.is_map()) return;
  for (auto& [key, value] : node.entries()) {
    const SectionSchema* section = schema.find_section(key);
    if (!section) continue;
    if (section->plugin_kind && value.is_scalar()) {
      ConfigNode map = ConfigNode::map(value.origin());
      map["plugin"] = value;
      value = std::move(map);
    }
    expand_plugin_shorthands(value, *section);
  }
}

}  // namespace trainer::recipe
