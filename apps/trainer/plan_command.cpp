// trainer plan RECIPE: the pipeline schedule a recipe would run — each pipeline rank's
// forwards, backwards, sends and receives, the blocks of each chunk, and the bubble each
// rank is predicted to idle through (forward 1, backward 2 time units per stage's blocks).
#include <fmt/format.h>

#include "commands.hpp"
#include "engine/components.hpp"
#include "engine/resolve_recipe.hpp"
#include "pipeline/pipeline_setup.hpp"
#include "pipeline/schedule_simulation.hpp"
#include "plugin/registry.hpp"
#include "recipe/diagnostics.hpp"
#include "recipe/recipe.hpp"
#include "trainer/backend.hpp"
#include "trainer/model.hpp"

namespace trainer::cli {

int plan_command(const Args& args) {
  RecipeArgs a;
  if (!parse_recipe_args(args, "plan", a)) return 2;
  if (!a.flags.empty()) {
    fmt::print(stderr, "trainer plan: unknown flag '{}'\n", a.flags.front());
    return 2;
  }
  ConfigNode recipe;
  try {
    recipe = load_and_validate_recipe(a.recipe, a.overrides);
  } catch (const recipe::RecipeError& e) {
    fmt::print(stderr, "{}", recipe::format_diagnostics(e.diagnostics));
    return 2;
  }
  const auto& parallel = recipe.at("parallel");
  const auto& train = recipe.at("train");
  const int pp = static_cast<int>(parallel.get_int("pp"));
  const auto dp = parallel.get_int("dp");
  const int micro = static_cast<int>(train.get_int("global_batch") / (dp * train.get_int("micro_batch")));
  if (pp == 1) {
    fmt::print("parallel.pp is 1: no pipeline; each rank runs its {} micro-batch(es) one after another.\n"
               "try: trainer plan {} parallel.pp=2 launch.nproc=2\n", micro, a.recipe);
    return 0;
  }
  try {
    // The model's parameter counts place the cuts; nothing is allocated.
    const auto dirs = recipe_plugin_path(recipe);
    auto backend = create_plugin<Backend>(find_plugin(PluginKind::backend, recipe.at("backend").get_string("plugin"), dirs),
                                          PluginContext{recipe.at("backend"), nullptr});
    auto model = create_plugin<Model>(find_plugin(PluginKind::model, recipe.at("model").get_string("plugin"), dirs),
                                      PluginContext{recipe.at("model"), backend.get()});
    const auto setup = pipeline::make_pipeline(recipe, model->parameters(), model->num_blocks(), pp, micro);
    const auto& s = setup.schedule;
    const auto t = pipeline::simulate(s, pipeline::unit_costs(s));
    fmt::print("pipeline '{}': pp {} x {} virtual stage(s) = {} chunks, {} micro-batches per step (dp {})\n", s.name,
               pp, s.virtual_stages, s.chunks(), micro, dp);
    fmt::print("chunk blocks: {}  (chunk c on pipeline rank c mod {}; embedding on rank 0, head on rank {}{})\n",
               setup.plan.describe(), pp, s.rank_of(s.chunks() - 1), setup.tied_head ? ", tied: both hold wte" : "");
    fmt::print("actions: F/B m.c = forward/backward of micro-batch m on chunk c; >A/<A send/recv activation, "
               ">G/<G send/recv gradient\n");
    fmt::print("{}", pipeline::describe(s));
    fmt::print("predicted bubble (forward 1, backward 2): ");
    for (std::size_t r = 0; r < t.bubble.size(); ++r) fmt::print("{}rank {} {:.1f}%", r ? ", " : "", r, 100 * t.bubble[r]);
    fmt::print("; textbook (p-1)/(v·m+p-1) = {:.1f}%\n", 100 * pipeline::textbook_bubble(pp, s.virtual_stages, micro));
    fmt::print("micro-batch activations in flight at most: ");
    for (std::size_t r = 0; r < t.peak_in_flight.size(); ++r) fmt::print("{}rank {} {}", r ? ", " : "", r, t.peak_in_flight[r]);
    fmt::print("\n");
  } catch (const ConfigError& e) {
    fmt::print(stderr, "error: {}\nnothing was planned.\n", e.what());
    return 2;
  }
  return 0;
}

}  // namespace trainer::cli
