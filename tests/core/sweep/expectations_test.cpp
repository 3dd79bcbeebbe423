// Each expectation kind on synthetic metrics: what passes, what fails, and what it says.
#include <catch2/catch.hpp>

#include "core/sweep/sweep_helpers.hpp"
#include "sweep/expectations.hpp"

using namespace sweep_test;
using namespace trainer::sweep;
using Status = Outcome::Status;

namespace {
Expectation expect(const std::string& metric) {
  Expectation x;
  x.metric = metric;
  return x;
}
}  // namespace

TEST_CASE("step_losses within rtol of the baseline", "[sweep]") {
  TempDir dir;
  const auto base = metrics(dir, "b", metrics_text({4.0, 3.0, 2.0}, 2.5, 1000));
  const auto close = metrics(dir, "c", metrics_text({4.0, 3.00001, 2.0}, 2.5, 1000));
  const auto far = metrics(dir, "f", metrics_text({4.0, 3.3, 2.0}, 2.5, 1000));
  const auto short_run = metrics(dir, "s", metrics_text({4.0, 3.0}, 2.5, 1000));
  auto x = expect("step_losses");
  x.rtol = 1e-5;
  auto ok = check(x, close, &base, false);
  CHECK(ok.status == Status::pass);
  CHECK(ok.detail == "max rel diff 3.3e-06 ≤ 1e-05");
  CHECK(ok.cell() == "✓ max rel diff 3.3e-06 ≤ 1e-05");
  auto bad = check(x, far, &base, false);
  CHECK(bad.status == Status::fail);
  CHECK(bad.detail == "max rel diff 0.1 > 1e-05 (worst at step 2)");
  CHECK(bad.cell().starts_with("✗ "));
  CHECK(check(x, short_run, &base, false).detail == "2 values vs the baseline's 3");
  CHECK(check(x, base, &base, true).status == Status::baseline);
  CHECK(check(x, close, nullptr, false).detail == "the baseline has no metrics to compare with");
}

TEST_CASE("atol, rtol with atol, and exact equality of series", "[sweep]") {
  TempDir dir;
  const auto base = metrics(dir, "b", metrics_text({4.0, 3.0}, 2.5, 1000));
  const auto other = metrics(dir, "o", metrics_text({4.0, 3.05}, 2.5, 1000));
  auto x = expect("step_losses");
  x.atol = 0.1;
  CHECK(check(x, other, &base, false).detail == "max abs diff 0.05 ≤ 0.1");
  x.atol = 0.01;
  CHECK(check(x, other, &base, false).status == Status::fail);
  x.rtol = 0.02;  // allowed at step 2: 0.01 + 0.02 * 3
  CHECK(check(x, other, &base, false).status == Status::pass);
  auto eq = expect("val_losses");
  eq.equal = true;
  CHECK(check(eq, other, &base, false).detail == "equal over 1 values");
  auto eq_steps = expect("step_losses");
  eq_steps.equal = true;
  CHECK(check(eq_steps, other, &base, false).detail == "differs at step 2: 3.05 vs the baseline's 3");
}

TEST_CASE("non-finite losses fail a tolerance check", "[sweep]") {
  TempDir dir;
  const auto base = metrics(dir, "b", metrics_text({4.0, 3.0}, 2.5, 1000));
  const auto nan = metrics(dir, "n", "{\"event\":\"step\",\"step\":1,\"loss\":4}\n{\"event\":\"step\",\"step\":2,\"loss\":null}\n");
  auto x = expect("step_losses");
  x.rtol = 1;
  CHECK(check(x, nan, &base, false).detail.starts_with("non-finite value at step 2"));
}

TEST_CASE("max and min bound a summary field absolutely, the baseline included", "[sweep]") {
  TempDir dir;
  const auto m = metrics(dir, "m", metrics_text({4.0, 2.25}, 2.3125, 1000));
  auto x = expect("final_val_loss");
  x.max = 2.5;
  CHECK(check(x, m, nullptr, true).cell() == "✓ 2.3125 ≤ 2.5");
  x.max = 0.001;
  CHECK(check(x, m, nullptr, false).cell() == "✗ 2.3125 > 0.001");
  auto y = expect("final_loss");
  y.min = 1;
  y.max = 2;
  CHECK(check(y, m, nullptr, false).cell() == "✗ 2.25 > 2; 2.25 ≥ 1");
}

TEST_CASE("ratios against the baseline", "[sweep]") {
  TempDir dir;
  const auto base = metrics(dir, "b", metrics_text({4.0}, 2.5, 1000));
  const auto small = metrics(dir, "s", metrics_text({4.0}, 2.5, 400));
  auto x = expect("activation_peak_bytes");
  x.max_ratio = 0.5;
  CHECK(check(x, small, &base, false).cell() == "✓ 0.4× baseline ≤ 0.5");
  CHECK(check(x, base, &base, true).status == Status::baseline);
  x.max_ratio.reset();
  x.min_ratio = 0.5;
  CHECK(check(x, small, &base, false).cell() == "✗ 0.4× baseline < 0.5");
  const auto zero = metrics(dir, "z", metrics_text({4.0}, 2.5, 0));
  CHECK(check(x, small, &zero, false).detail == "the baseline's value is 0; no ratio");
}

TEST_CASE("equal and rtol on summary fields", "[sweep]") {
  TempDir dir;
  const auto base = metrics(dir, "b", metrics_text({4.0}, 2.5, 1000, ",\"final_params_checksum\":\"9f3a\""));
  const auto same = metrics(dir, "s", metrics_text({4.0}, 2.5, 1000, ",\"final_params_checksum\":\"9f3a\""));
  const auto other = metrics(dir, "o", metrics_text({4.1}, 2.5, 1000, ",\"final_params_checksum\":\"77b0\""));
  auto x = expect("final_params_checksum");
  x.equal = true;
  CHECK(check(x, same, &base, false).cell() == "✓ 9f3a = 9f3a");
  CHECK(check(x, other, &base, false).cell() == "✗ 77b0 ≠ 9f3a");
  auto r = expect("final_loss");
  r.rtol = 0.01;
  CHECK(check(r, other, &base, false).cell() == "✗ rel diff 0.025 > 0.01");
}

TEST_CASE("a metric the run did not write is reported missing, with a guess", "[sweep]") {
  TempDir dir;
  const auto m = metrics(dir, "m", metrics_text({4.0}, 2.5, 1000));
  auto x = expect("final_params_checksum");
  x.equal = true;
  CHECK(check(x, m, &m, false).cell() == "✗ missing");
  auto typo = expect("final_val_los");
  typo.max = 3;
  CHECK(check(typo, m, nullptr, false).detail == "missing (did you mean 'final_val_loss'?)");
  const auto unfinished = metrics(dir, "u", "{\"event\":\"step\",\"step\":1,\"loss\":4}\n");
  CHECK(check(typo, unfinished, nullptr, false).detail == "missing (no summary line: the run did not finish)");
  auto series = expect("val_losses");
  series.rtol = 1;
  CHECK(check(series, unfinished, &m, false).detail == "missing");
  CHECK(check(series, m, &unfinished, false).detail == "missing in the baseline");
}

TEST_CASE("format_value shows integers in full", "[sweep]") {
  CHECK(format_value(123456789) == "123456789");
  CHECK(format_value(2.3125) == "2.3125");
  CHECK(format_value(1.0 / 3) == "0.333333");
}
