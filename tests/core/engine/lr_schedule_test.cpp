// The learning-rate schedule: linear warmup to lr, then cosine or linear decay reaching
// min_lr at the last step, or constant.
#include <catch2/catch.hpp>

#include "engine/lr_schedule.hpp"

using trainer::LrSchedule;

TEST_CASE("warmup rises linearly to lr", "[lr]") {
  LrSchedule s{1.0, 0.1, 10, 110, "cosine"};
  CHECK(s.at(0) == Approx(0.1));
  CHECK(s.at(4) == Approx(0.5));
  CHECK(s.at(9) == Approx(1.0));
}

TEST_CASE("cosine decay reaches min_lr at the last step", "[lr]") {
  LrSchedule s{1.0, 0.1, 10, 111, "cosine"};
  CHECK(s.at(10) == Approx(1.0));
  CHECK(s.at(60) == Approx(0.55));  // halfway: the mean of lr and min_lr
  CHECK(s.at(110) == Approx(0.1));
  for (int i = 11; i <= 110; ++i) CHECK(s.at(i) <= s.at(i - 1));
}

TEST_CASE("linear decay and constant", "[lr]") {
  LrSchedule lin{1.0, 0.0, 0, 101, "linear"};
  CHECK(lin.at(0) == Approx(1.0));
  CHECK(lin.at(50) == Approx(0.5));
  CHECK(lin.at(100) == Approx(0.0).margin(1e-12));
  LrSchedule c{0.3, 0.0, 0, 50, "constant"};
  CHECK(c.at(0) == 0.3);
  CHECK(c.at(49) == 0.3);
}
