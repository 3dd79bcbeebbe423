// Judging points and showing them: status words, outcome cells, Markdown and CSV.
#include <catch2/catch.hpp>

#include "core/sweep/sweep_helpers.hpp"
#include "sweep/report.hpp"

using namespace sweep_test;
using namespace trainer::sweep;

namespace {

PointResult point(const TempDir& dir, const std::string& value, const std::string& metrics_jsonl, int exit_code = 0) {
  PointResult r;
  r.point.assignments = {{"recompute", value}};
  r.point.id = point_id(r.point.assignments);
  r.run.started = true;
  r.run.exit_code = exit_code;
  r.run.seconds = 1.25;
  r.metrics = metrics(dir, value, metrics_jsonl);
  if (exit_code) r.log_tail = {"error: unknown key 'n_layerz'", "1 error(s); nothing was run."};
  return r;
}

SweepResults sample(const TempDir& dir, double val_max) {
  SweepResults s;
  Expectation losses;
  losses.metric = "step_losses";
  losses.rtol = 1e-5;
  Expectation val;
  val.metric = "final_val_loss";
  val.max = val_max;
  Expectation act;
  act.metric = "activation_peak_bytes";
  act.max_ratio = 0.5;
  act.where = {{"recompute", {"full"}}};
  s.expectations = {losses, val, act};
  s.points.push_back(point(dir, "none", metrics_text({4.0, 3.0}, 2.5, 4096)));
  s.points[0].point.is_baseline = true;
  s.points.push_back(point(dir, "full", metrics_text({4.0, 3.00001}, 2.5, 1024)));
  s.points.push_back(point(dir, "bogus", "", 2));
  evaluate(s);
  return s;
}

}  // namespace

TEST_CASE("statuses: ok, FAIL with the failed checks, ERROR with the exit code", "[sweep]") {
  TempDir dir;
  const auto good = sample(dir, 3.0);
  CHECK(good.points[0].status() == "ok");
  CHECK(good.points[1].status() == "ok");
  CHECK(good.points[2].status() == "ERROR exit 2");
  CHECK_FALSE(good.all_ok());
  CHECK(good.points[0].outcomes[0].status == Outcome::Status::baseline);
  CHECK(good.points[0].outcomes[2].status == Outcome::Status::not_applicable);
  CHECK(good.points[1].outcomes[2].cell() == "✓ 0.25× baseline ≤ 0.5");
  CHECK(good.points[2].outcomes[1].status == Outcome::Status::not_applicable);

  const auto bad = sample(dir, 0.001);
  CHECK(bad.points[0].status() == "FAIL: #2 final_val_loss max 0.001");
  PointResult unfinished = point(dir, "x", "{\"event\":\"step\",\"step\":1,\"loss\":4}\n");
  CHECK(unfinished.status() == "FAIL: no summary in metrics.jsonl");
  unfinished.run.signal = 9;
  CHECK(unfinished.status() == "ERROR signal 9");
}

TEST_CASE("all_ok only when every point ran and held", "[sweep]") {
  TempDir dir;
  auto s = sample(dir, 3.0);
  s.points.pop_back();
  CHECK(s.all_ok());
}

TEST_CASE("the Markdown table: a row per point, a column per expectation, failed logs below", "[sweep]") {
  TempDir dir;
  const std::string md = markdown(sample(dir, 3.0));
  INFO(md);
  CHECK(md.starts_with("| point | status | steps | final loss | final val loss | median tok/s | activation peak | "
                       "#1 step_losses rtol 1e-05 | #2 final_val_loss max 3 | "
                       "#3 activation_peak_bytes max_ratio 0.5 [recompute=full] |\n"
                       "|---|---|---:|---:|---:|---:|---:|---|---|---|\n"));
  CHECK(md.find("| recompute=none (baseline) | ok | 2 | 3.0000 | 2.5000 | 1,000 | 4.00 KiB | baseline | ✓ 2.5 ≤ 3 | – |") !=
        std::string::npos);
  CHECK(md.find("| recompute=full | ok | 2 | 3.0000 | 2.5000 | 1,000 | 1.00 KiB | ✓ max rel diff 3.3e-06 ≤ 1e-05 |") !=
        std::string::npos);
  CHECK(md.find("| recompute=bogus | ERROR exit 2 | – | – | – | – | – | – | – | – |") != std::string::npos);
  CHECK(md.find("recompute=bogus (exit 2), last lines of its log.txt:\n\n```\nerror: unknown key 'n_layerz'\n") !=
        std::string::npos);
  CHECK(md.find("3 points: 2 ok, 0 FAIL, 1 ERROR.") != std::string::npos);
}

TEST_CASE("Markdown cells escape pipes", "[sweep]") {
  TempDir dir;
  SweepResults s;
  s.points.push_back(point(dir, "a|b", metrics_text({1.0}, 1.0, 1)));
  evaluate(s);
  CHECK(markdown(s).find("recompute=a_b") != std::string::npos);
  s.points[0].point.id = "x|y";
  CHECK(markdown(s).find("| x\\|y |") != std::string::npos);
}

TEST_CASE("CSV: a column per swept key, raw numbers, quoted multi-line log tails", "[sweep]") {
  TempDir dir;
  const std::string text = csv(sample(dir, 3.0));
  INFO(text);
  CHECK(text.starts_with("point,baseline,recompute,status,exit_code,seconds,steps,final_loss,final_val_loss,"
                         "median_tokens_per_s,activation_peak_bytes,step_losses rtol 1e-05,final_val_loss max 3,"
                         "activation_peak_bytes max_ratio 0.5 [recompute=full],log_tail\n"));
  CHECK(text.find("\nrecompute=none,true,none,ok,0,1.250,2,3,2.5,1000,4096,baseline,pass: 2.5 ≤ 3,,\n") !=
        std::string::npos);
  CHECK(text.find("\nrecompute=bogus,false,bogus,ERROR exit 2,2,1.250,,,,,,,,,\"error: unknown key 'n_layerz'\n1 "
                  "error(s); nothing was run.\"\n") != std::string::npos);
}
