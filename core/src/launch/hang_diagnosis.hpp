// The supervisor's one-paragraph diagnosis of a hung or failed collective, from the flight
// records the ranks dumped: which rank(s) never entered which collective (group, op, sequence
// number) at which step, and what the others were waiting on. A pure function of the
// records, so that it can be tested without processes.
#pragma once
#include <map>
#include <string>

#include "comm/flight_recorder.hpp"

namespace trainer::launch {

// `records`: by global rank, those that arrived; `world`: ranks in the job (a rank without a
// record is named as such). Returns the diagnosis without a trailing newline.
std::string diagnose_collectives(const std::map<int, comm::FlightRecord>& records, int world);

}  // namespace trainer::launch
