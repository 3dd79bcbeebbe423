// Loss spikes: the ratio to the mean of the last `window` good steps, nothing judged before
// the window is full, and a rollback (rewind) restoring the window as it was.
#include <catch2/catch.hpp>

#include "engine/loss_spike.hpp"

using trainer::LossSpikeDetector;

TEST_CASE("off by default and with ratio 0", "[spike]") {
  LossSpikeDetector off;
  CHECK_FALSE(off.enabled());
  off.record(1, 1.0);
  CHECK_FALSE(off.judge(1e9));
}

TEST_CASE("a loss above ratio x the window's mean is a spike", "[spike]") {
  LossSpikeDetector d(2.0, 3);
  d.record(1, 4.0);
  d.record(2, 3.0);
  CHECK_FALSE(d.judge(100.0));  // the window is not full yet
  d.record(3, 2.0);
  CHECK(d.mean() == Approx(3.0));
  CHECK_FALSE(d.judge(6.0));  // exactly 2x is not above 2x
  REQUIRE(d.judge(6.3));
  CHECK(*d.judge(6.3) == Approx(2.1));
  d.record(4, 1.0);  // the window slides: mean of 3, 2, 1
  CHECK(d.mean() == Approx(2.0));
  CHECK(d.judge(4.5));
  CHECK_FALSE(d.judge(std::nan("")));  // non-finite losses are another check's business
}

TEST_CASE("rewind restores the window of an earlier step", "[spike]") {
  LossSpikeDetector d(1.5, 2);
  for (int s = 1; s <= 6; ++s) d.record(s, static_cast<double>(s));
  CHECK(d.mean() == Approx(5.5));
  d.rewind(3);  // back to the state after step 3: window {2, 3}
  CHECK(d.size() == 3);
  CHECK(d.mean() == Approx(2.5));
  d.record(4, 10.0);
  CHECK(d.mean() == Approx(6.5));
}

TEST_CASE("settle keeps a checkpoint's window and what follows", "[spike]") {
  LossSpikeDetector d(1.5, 2);
  for (int s = 1; s <= 10; ++s) d.record(s, static_cast<double>(s));
  d.settle(6);  // a checkpoint of step 6: keep 5, 6 and 7..10
  CHECK(d.size() == 6);
  d.rewind(6);
  CHECK(d.mean() == Approx(5.5));
}
