#include "gloo_store.hpp"

#include <utility>

namespace trainer::gloo_plugin {

StoreAdapter::StoreAdapter(trainer::Store& store, std::string prefix, std::chrono::milliseconds timeout)
    : store_(store), prefix_(std::move(prefix)), timeout_(timeout) {}

std::string StoreAdapter::key(const std::string& k) const {
  std::string s = prefix_;
  s += k;
  return s;
}

void StoreAdapter::set(const std::string& k, const std::vector<char>& data) {
  store_.set(key(k), std::vector<std::uint8_t>(data.begin(), data.end()));
}

std::vector<char> StoreAdapter::get(const std::string& k) {
  const auto v = store_.get(key(k), timeout_);
  return std::vector<char>(v.begin(), v.end());
}

void StoreAdapter::wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }

void StoreAdapter::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (const auto& k : keys) full.push_back(key(k));
  store_.wait(full, timeout);
}

}  // namespace trainer::gloo_plugin
