// pipeline::Message: one transfer between pipeline stages, named by the chunk that produced it
// (an activation leaves chunk c forward, a gradient leaves chunk c backward) — the key the
// executor matches receives by, and the simulation and the replay time messages by.
#pragma once
#include <tuple>

namespace trainer::pipeline {

struct Message {
  bool activation;
  int micro;
  int from_chunk;
  auto key() const { return std::tuple(activation, micro, from_chunk); }
  bool operator<(const Message& o) const { return key() < o.key(); }
};

}  // namespace trainer::pipeline
