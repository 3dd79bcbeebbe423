// The supervisor's diagnosis from flight records: which rank never entered which
// collective, at which step, and what the others were waiting on.
#include <catch2/catch.hpp>

#include "launch/hang_diagnosis.hpp"

using namespace trainer::comm;
using namespace trainer::launch;
using State = FlightEntry::State;

namespace {

// A rank that completed all_reduce #1..#done (step = seq / 4 + 1) and, if `waiting`, issued
// #done+1 at step 20 and was still in it `waited` seconds later.
FlightRecord rank_record(int rank, std::uint64_t done, bool waiting, double waited = 5.2) {
  FlightRecord r;
  r.rank = rank;
  r.step = 20;
  double t = 0;
  for (std::uint64_t s = 1; s <= done; ++s) {
    FlightEntry e;
    e.id = s - 1;
    e.group = "dp";
    e.op = "all_reduce";
    e.seq = s;
    e.bytes = 4;
    e.step = static_cast<std::int64_t>(s / 4 + 1);
    e.issued_s = t;
    e.ended_s = t + 0.01;
    e.state = State::completed;
    t += 0.02;
    r.entries.push_back(e);
  }
  if (waiting) {
    FlightEntry e;
    e.id = done;
    e.group = "dp";
    e.op = "all_reduce";
    e.seq = done + 1;
    e.bytes = 4;
    e.step = 20;
    e.issued_s = t;
    r.entries.push_back(e);
    t += waited;
  }
  r.now_s = t;
  return r;
}

}  // namespace

TEST_CASE("a rank that never entered the collective the others wait in is named", "[launch][diagnosis]") {
  std::map<int, FlightRecord> records;
  for (int r : {0, 1, 3}) records[r] = rank_record(r, 76, true);
  records[2] = rank_record(2, 76, false);
  const std::string d = diagnose_collectives(records, 4);
  CHECK_THAT(d, Catch::StartsWith("diagnosis: rank 2 never entered all_reduce #77 of group 'dp' at step 20; "));
  CHECK_THAT(d, Catch::Contains("ranks 0, 1 and 3 were waiting in it (group 'dp' all_reduce #77 (4 bytes, step 20)) "
                                "for up to 5.2 s"));
  CHECK_THAT(d, Catch::Contains("rank 2's last collective there was all_reduce #76 at step 20 (completed)"));
}

TEST_CASE("ranks without a record and ranks that failed are told apart", "[launch][diagnosis]") {
  std::map<int, FlightRecord> records;
  records[0] = rank_record(0, 10, true, 1.5);
  records[1] = rank_record(1, 9, false);
  records[2] = rank_record(2, 10, true, 1.0);
  records[2].entries.back().state = State::failed;
  records[2].entries.back().ended_s = records[2].entries.back().issued_s + 1.0;
  records[2].entries.back().error = "connection closed by peer";
  const std::string d = diagnose_collectives(records, 4);
  CHECK_THAT(d, Catch::StartsWith("diagnosis: rank 1 never entered all_reduce #11 of group 'dp'"));
  CHECK_THAT(d, Catch::Contains("ranks 0 and 2 were waiting in it"));
  CHECK_THAT(d, Catch::Contains("up to 1.5 s"));
  CHECK_THAT(d, Catch::Contains("rank 3 left no flight record"));
  CHECK_THAT(d, Catch::Contains("first error: connection closed by peer"));
}

TEST_CASE("when every rank entered, the diagnosis says none completed", "[launch][diagnosis]") {
  std::map<int, FlightRecord> records;
  records[0] = rank_record(0, 5, true);
  records[1] = rank_record(1, 5, true);
  CHECK_THAT(diagnose_collectives(records, 2),
             Catch::StartsWith("diagnosis: every rank entered group 'dp' all_reduce #6 (4 bytes, step 20) but ranks 0 "
                               "and 1 did not complete it"));
  // A rank without a record and the others all waiting: the silent one is the suspect.
  CHECK_THAT(diagnose_collectives(records, 3),
             Catch::StartsWith("diagnosis: rank 2 left no flight record (killed, or could not dump); ranks 0 and 1 "
                               "were waiting in group 'dp' all_reduce #6"));
}

TEST_CASE("nothing in flight is said plainly", "[launch][diagnosis]") {
  std::map<int, FlightRecord> records;
  records[0] = rank_record(0, 5, false);
  CHECK(diagnose_collectives(records, 2) == "diagnosis: no rank was waiting in a collective; rank 1 left no flight record");
}
