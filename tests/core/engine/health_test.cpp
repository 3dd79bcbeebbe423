// The bad-step count that ends a run: consecutive skipped steps, and bad steps that recur
// after rollbacks (replayed good steps before the last bad one are no progress).
#include <catch2/catch.hpp>

#include "engine/health.hpp"

using trainer::BadStepCounter;

TEST_CASE("consecutive skipped steps reach the limit", "[health]") {
  BadStepCounter c(3);
  c.bad(15, true);
  c.bad(16, true);
  CHECK_FALSE(c.exhausted());
  c.bad(17, true);
  CHECK(c.exhausted());
  CHECK(c.abort_message() == "3 consecutive steps with non-finite gradients (steps 15-17)");
}

TEST_CASE("a good step past the last bad one resets the count", "[health]") {
  BadStepCounter c(3);
  c.bad(15, true);
  c.bad(16, false);
  c.good(17);
  CHECK(c.count() == 0);
  c.bad(20, false);
  CHECK(c.count() == 1);
}

TEST_CASE("a bad step that recurs after every rollback still ends the run", "[health]") {
  BadStepCounter c(3);
  for (int attempt = 0; attempt < 3; ++attempt) {
    for (int s = 11; s <= 14; ++s) c.good(s);  // the replay from the checkpoint of step 10
    c.bad(15, false);
  }
  CHECK(c.exhausted());
  CHECK(c.abort_message() == "3 consecutive bad steps (step 15)");
}

TEST_CASE("limit 0 never ends the run", "[health]") {
  BadStepCounter c(0);
  for (int s = 1; s <= 100; ++s) c.bad(s, true);
  CHECK_FALSE(c.exhausted());
}
