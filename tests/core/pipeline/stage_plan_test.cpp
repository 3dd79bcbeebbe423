// Cutting the block stack into pipeline chunks, and which parameters each rank holds.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline/stage_plan.hpp"

using namespace trainer;
using namespace trainer::pipeline;

namespace {

ParameterSpec spec(std::string name, Shape shape, int block) {
  ParameterSpec s;
  s.name = std::move(name);
  s.shape = std::move(shape);
  s.block = block;
  return s;
}

// An embedding (block -1), `sizes[b]` elements per block, a final norm (block -1).
std::vector<ParameterSpec> model(const std::vector<std::int64_t>& sizes) {
  std::vector<ParameterSpec> p;
  p.push_back(spec("wte", {10, 4}, -1));
  p.push_back(spec("wpe", {8, 4}, -1));
  for (std::size_t b = 0; b < sizes.size(); ++b) p.push_back(spec("h." + std::to_string(b), {sizes[b]}, static_cast<int>(b)));
  p.push_back(spec("lnf.w", {4}, -1));
  return p;
}

PipelineSchedule stages(int p, int v) {
  PipelineSchedule s;
  s.stages = p;
  s.virtual_stages = v;
  return s;
}

std::vector<std::string> names(const std::vector<ParameterSpec>& specs) {
  std::vector<std::string> n;
  for (const auto& s : specs) n.push_back(s.name);
  return n;
}

}  // namespace

TEST_CASE("chunks are balanced by parameter count", "[pipeline]") {
  CHECK(balance_by_parameters(model({1, 1, 1, 1}), 4, 2).first == std::vector<int>{0, 2, 4});
  CHECK(balance_by_parameters(model({1, 1, 1, 1, 1, 1, 1, 1}), 8, 4).first == std::vector<int>{0, 2, 4, 6, 8});
  // One heavy block gets a chunk to itself.
  CHECK(balance_by_parameters(model({10, 1, 1, 1}), 4, 2).first == std::vector<int>{0, 1, 4});
  CHECK(balance_by_parameters(model({1, 1, 1}), 3, 3).first == std::vector<int>{0, 1, 2, 3});
  CHECK_THROWS_AS(balance_by_parameters(model({1, 1}), 2, 3), std::invalid_argument);
}

TEST_CASE("explicit boundaries are checked", "[pipeline]") {
  CHECK(explicit_plan({1}, 4, 2).first == std::vector<int>{0, 1, 4});
  CHECK(explicit_plan({1}, 4, 2).describe() == "0 | 1-3");
  CHECK_THROWS_WITH(explicit_plan({1, 2}, 4, 2), Catch::Contains("lists 2 boundaries; 2 chunks need 1"));
  CHECK_THROWS_WITH(explicit_plan({2, 2}, 4, 3), Catch::Contains("increase strictly"));
  CHECK_THROWS_WITH(explicit_plan({4}, 4, 2), Catch::Contains("increase strictly"));
}

TEST_CASE("each rank holds its blocks, the ends the embedding and head", "[pipeline]") {
  const auto all = model({1, 1, 1, 1});
  const auto plan = explicit_plan({2}, 4, 2);
  const auto s = stages(2, 1);
  CHECK(names(stage_parameters(all, plan, s, 0, true)) == std::vector<std::string>{"wte", "wpe", "h.0", "h.1"});
  CHECK(names(stage_parameters(all, plan, s, 1, true)) == std::vector<std::string>{"wte", "wpe", "h.2", "h.3", "lnf.w"});
  CHECK(names(stage_parameters(all, plan, s, 1, false)) == std::vector<std::string>{"h.2", "h.3", "lnf.w"});
  // Interleaved: rank r holds chunks r and r + pp.
  const auto inter = explicit_plan({1, 2, 3}, 4, 4);
  CHECK(names(stage_parameters(all, inter, stages(2, 2), 0, false)) == std::vector<std::string>{"wte", "wpe", "h.0", "h.2"});
  CHECK(names(stage_parameters(all, inter, stages(2, 2), 1, false)) == std::vector<std::string>{"h.1", "h.3", "lnf.w"});
  CHECK(embedding_parameter_count(all) == 2);
}
