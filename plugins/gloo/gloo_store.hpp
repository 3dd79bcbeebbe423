// Adapts the job's trainer::Store to the interface gloo's rendezvous expects. Every key is
// prefixed with the group name and a per-connect generation, so groups of one job and
// reconnects of one group never read each other's addresses.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

#include "trainer/store.hpp"

namespace trainer::gloo_plugin {

class StoreAdapter final : public gloo::rendezvous::Store {
 public:
  // `timeout` bounds get() and wait() calls that carry no timeout of their own.
  StoreAdapter(trainer::Store& store, std::string prefix, std::chrono::milliseconds timeout);

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  std::string key(const std::string& k) const;

  trainer::Store& store_;
  std::string prefix_;
  std::chrono::milliseconds timeout_;
};

}  // namespace trainer::gloo_plugin
