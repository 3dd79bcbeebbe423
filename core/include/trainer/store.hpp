// Store: the rendezvous key-value store every rank of a job reaches (the supervisor serves
// it over TCP). Communicators exchange their connection details through it.
#pragma once
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Store {
 public:
  virtual ~Store();
  virtual void set(const std::string& key, const std::vector<std::uint8_t>& value) = 0;
  // Blocks until the key exists; throws StoreError after `timeout`.
  virtual std::vector<std::uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) = 0;
  // Atomically adds `delta` to an integer counter (created at 0) and returns the new value.
  virtual std::int64_t add(const std::string& key, std::int64_t delta) = 0;
  // Blocks until every key exists; throws StoreError after `timeout`.
  virtual void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) = 0;
  virtual bool check(const std::vector<std::string>& keys) = 0;  // all exist, without blocking
};

}  // namespace trainer
